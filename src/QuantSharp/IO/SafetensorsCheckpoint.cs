using TorchSharp;

namespace QuantSharp.IO;

/// <summary>
/// A model's weights: a folder holding model.safetensors, or shards listed by model.safetensors.index.json, or a
/// single .safetensors file. All shard headers are read and cross-checked against the index at open; tensor data is
/// read lazily, one tensor at a time.
/// </summary>
public sealed class SafetensorsCheckpoint : IDisposable
{
    public const string SingleFileName = "model.safetensors";

    private readonly SafetensorsFile[] _files;
    private readonly Dictionary<string, SafetensorsFile> _owner;

    /// <summary>The index file when sharded, otherwise the single .safetensors file; named in errors.</summary>
    public string SourcePath { get; }

    /// <summary>The index file, or null for a single-file checkpoint.</summary>
    public string? IndexPath { get; }

    /// <summary>Full paths of the shard files, in file-name order (model-00001-of-... first).</summary>
    public IReadOnlyList<string> ShardFiles { get; }

    /// <summary>Tensor names: shard by shard, header order within a shard.</summary>
    public IReadOnlyList<string> Names { get; }

    /// <summary>Sum of the tensors' stored sizes, measured from the headers rather than trusted from the index.</summary>
    public long TotalBytes { get; }

    private SafetensorsCheckpoint(string sourcePath, string? indexPath, SafetensorsFile[] files, Dictionary<string, SafetensorsFile> owner, IReadOnlyList<string> names)
    {
        SourcePath = sourcePath;
        IndexPath = indexPath;
        _files = files;
        _owner = owner;
        ShardFiles = files.Select(f => f.FilePath).ToArray();
        Names = names;
        TotalBytes = names.Sum(n => owner[n].GetInfo(n).ByteCount);
    }

    /// <summary>
    /// Opens a model folder, a .safetensors file, or an index .json file. A folder with both model.safetensors and an
    /// index opens model.safetensors, as transformers does.
    /// </summary>
    public static SafetensorsCheckpoint Open(string directory)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string path = Path.GetFullPath(directory);
        if (File.Exists(path))
            return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase) ? OpenSharded(path) : OpenSingle(path);
        if (!Directory.Exists(path))
            throw new InvalidFileException(path, "no such file or folder");
        string single = Path.Combine(path, SingleFileName);
        if (File.Exists(single)) return OpenSingle(single);
        string index = Path.Combine(path, ShardIndex.FileName);
        if (File.Exists(index)) return OpenSharded(index);
        throw new InvalidFileException(path, $"folder has neither {SingleFileName} nor {ShardIndex.FileName}");
    }

    private static SafetensorsCheckpoint OpenSingle(string file)
    {
        var f = SafetensorsFile.Open(file);
        var owner = f.Names.ToDictionary(n => n, _ => f, StringComparer.Ordinal);
        return new SafetensorsCheckpoint(file, null, [f], owner, f.Names);
    }

    private static SafetensorsCheckpoint OpenSharded(string indexPath)
    {
        ShardIndex index = ShardIndex.Load(indexPath);
        string folder = Path.GetDirectoryName(indexPath)!;
        string[] shardNames = index.WeightMap.Select(e => e.Value).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray();

        // Check every shard exists before opening any, so the error names the first missing one plainly.
        foreach (string shard in shardNames)
        {
            string full = Path.Combine(folder, shard);
            if (!File.Exists(full))
                throw new InvalidFileException(indexPath, $"weight_map names shard '{shard}', which does not exist ({full})");
        }

        var files = new List<SafetensorsFile>();
        try
        {
            foreach (string shard in shardNames) files.Add(SafetensorsFile.Open(Path.Combine(folder, shard)));
            var byShard = files.ToDictionary(f => Path.GetFileName(f.FilePath), StringComparer.Ordinal);

            var owner = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shard) in index.WeightMap)
            {
                SafetensorsFile file = byShard[shard];
                if (!file.Contains(name))
                    throw new InvalidFileException(file.FilePath, $"listed in {indexPath} but absent from this shard", name);
                owner.Add(name, file);
            }
            // Tensors a shard holds but the index does not list are ignored: the index decides what the model is.
            var names = files.SelectMany(f => f.Names.Where(n => owner.TryGetValue(n, out SafetensorsFile? o) && o == f)).ToArray();
            return new SafetensorsCheckpoint(indexPath, indexPath, [.. files], owner, names);
        }
        catch
        {
            foreach (var f in files) f.Dispose();
            throw;
        }
    }

    public bool Contains(string name) => _owner.ContainsKey(name);

    /// <summary>The open shard holding a tensor (for ReadBytes or metadata).</summary>
    public SafetensorsFile FileOf(string name) =>
        _owner.TryGetValue(name, out SafetensorsFile? f)
            ? f
            : throw new InvalidFileException(SourcePath, "no such tensor in this checkpoint", name);

    /// <summary>The entry, with Begin/End absolute offsets within <see cref="ShardOf"/>.</summary>
    public SafeTensorInfo GetInfo(string name) => FileOf(name).GetInfo(name);

    /// <summary>Full path of the shard file holding the tensor.</summary>
    public string ShardOf(string name) => FileOf(name).FilePath;

    public torch.Tensor Read(string name) => FileOf(name).Read(name);

    public byte[] ReadBytes(string name) => FileOf(name).ReadBytes(name);

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
    }
}
