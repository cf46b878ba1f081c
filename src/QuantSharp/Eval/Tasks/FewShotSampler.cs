using QuantSharp.Calibration;

namespace QuantSharp.Eval.Tasks;

/// <summary>
/// k-shot examples as lm-eval's default sampler draws them: one random.Random(seed) for the whole run, documents
/// visited in order, each drawing random.sample(fewshot_docs, k) (k + 1 when examples come from the scored split, the
/// document itself then being dropped).
/// </summary>
public sealed class FewShotSampler
{
    private readonly IReadOnlyList<TaskDocument> _pool;
    private readonly bool _poolIsScoredSplit;
    private readonly PythonRandom _random;

    public const int DefaultSeed = 1234;

    public FewShotSampler(IReadOnlyList<TaskDocument> pool, bool poolIsScoredSplit, long seed = DefaultSeed)
    {
        _pool = pool;
        _poolIsScoredSplit = poolIsScoredSplit;
        _random = new PythonRandom(seed);
    }

    public IReadOnlyList<TaskDocument> Sample(TaskDocument doc, int k)
    {
        if (k == 0) return [];
        int draw = _poolIsScoredSplit ? k + 1 : k;
        if (draw > _pool.Count)
            throw new QuantSharpException($"{k}-shot needs {draw} few-shot documents but the split has {_pool.Count}.");
        return _random.Sample(_pool.Count, draw).Select(i => _pool[i])
            .Where(d => !(_poolIsScoredSplit && d.Index == doc.Index)).Take(k).ToList();
    }
}
