namespace QuantSharp.Quantization;

/// <summary>Visits calibration batches in seeded random permutations, one after another (a new one when exhausted).</summary>
internal sealed class BatchOrder(int count, int seed)
{
    private readonly Random _random = new(seed);
    private int[] _order = [];
    private int _next;

    public int Next()
    {
        if (_next >= _order.Length)
        {
            _order = Enumerable.Range(0, count).ToArray();
            _random.Shuffle(_order);
            _next = 0;
        }
        return _order[_next++];
    }
}
