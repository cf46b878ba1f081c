using System.Globalization;
using System.Runtime.InteropServices;

namespace QuantSharp.Export.Onnx;

/// <summary>ONNX TensorProto.DataType values used here.</summary>
internal enum OnnxDataType
{
    Float = 1,
    UInt8 = 2,
    Int64 = 7,
}

/// <summary>A node attribute: one of int, float, ints (AttributeProto.type INT = 2, FLOAT = 1, INTS = 7).</summary>
internal sealed record OnnxAttribute(string Name, long? Int = null, float? Float = null, long[]? Ints = null)
{
    public static OnnxAttribute Of(string name, long value) => new(name, Int: value);
    public static OnnxAttribute Of(string name, float value) => new(name, Float: value);
    public static OnnxAttribute Of(string name, long[] values) => new(name, Ints: values);
}

/// <summary>A graph input or output: element type and shape, each dimension a size or a symbolic name.</summary>
internal sealed record OnnxValueInfo(string Name, OnnxDataType Type, object[] Shape);

internal sealed record OnnxNode(string OpType, string Domain, string Name, string[] Inputs, string[] Outputs, OnnxAttribute[] Attributes);

internal sealed record OnnxInitializer(string Name, OnnxDataType Type, long[] Dims, byte[] Raw);

/// <summary>
/// An ONNX graph under construction: nodes in topological order (the order they are added), initializers, inputs and
/// outputs, and <see cref="Serialize"/> to a ModelProto (ir_version 8, ai.onnx opset 17, com.microsoft opset 1).
/// Field numbers are those of onnx/onnx.proto.
/// </summary>
internal sealed class OnnxGraph
{
    public const long IrVersion = 8;
    public const long OnnxOpset = 17;
    public const string MicrosoftDomain = "com.microsoft";

    /// <summary>Protobuf messages cannot exceed 2 GiB; keep a margin for the graph structure.</summary>
    public const long MaxSerializedBytes = int.MaxValue - (16L << 20);

    private readonly List<OnnxNode> _nodes = [];
    private readonly List<OnnxInitializer> _initializers = [];
    private readonly HashSet<string> _names = [];
    private int _counter;

    public List<OnnxValueInfo> Inputs { get; } = [];
    public List<OnnxValueInfo> Outputs { get; } = [];
    public IReadOnlyList<OnnxNode> Nodes => _nodes;
    public IReadOnlyList<OnnxInitializer> Initializers => _initializers;

    public long InitializerBytes => _initializers.Sum(i => (long)i.Raw.Length);

    /// <summary>Adds a node with one output, named after <paramref name="hint"/> (made unique); returns the output name.</summary>
    public string Add(string opType, string hint, string[] inputs, params OnnxAttribute[] attributes) =>
        AddIn("", opType, hint, inputs, attributes);

    public string AddMicrosoft(string opType, string hint, string[] inputs, params OnnxAttribute[] attributes) =>
        AddIn(MicrosoftDomain, opType, hint, inputs, attributes);

    private string AddIn(string domain, string opType, string hint, string[] inputs, OnnxAttribute[] attributes)
    {
        string output = Unique(hint);
        _nodes.Add(new OnnxNode(opType, domain, output + "/" + opType, inputs, [output], attributes));
        return output;
    }

    /// <summary>Renames the output of the last node (e.g. to the graph output's name).</summary>
    public void NameLastOutput(string name)
    {
        var last = _nodes[^1];
        _names.Add(name);
        _nodes[^1] = last with { Outputs = [name] };
    }

    public string Initializer(string name, OnnxDataType type, long[] dims, byte[] raw)
    {
        if (!_names.Add(name)) throw new InvalidOperationException($"duplicate ONNX value name '{name}'");
        _initializers.Add(new OnnxInitializer(name, type, dims, raw));
        return name;
    }

    public string Floats(string name, long[] dims, ReadOnlySpan<float> values) =>
        Initializer(name, OnnxDataType.Float, dims, MemoryMarshal.AsBytes(values).ToArray());

    public string Int64s(string name, params long[] values) =>
        Initializer(name, OnnxDataType.Int64, [values.Length], MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>A scalar (rank-0) constant.</summary>
    public string ScalarFloat(string name, float value) =>
        Initializer(name, OnnxDataType.Float, [], BitConverter.GetBytes(value));

    public string ScalarInt64(string name, long value) =>
        Initializer(name, OnnxDataType.Int64, [], BitConverter.GetBytes(value));

    private string Unique(string hint)
    {
        string name = hint;
        while (!_names.Add(name)) name = hint + "_" + (++_counter).ToString(CultureInfo.InvariantCulture);
        return name;
    }

    /// <summary>Initializers at least this large go to the external-data file when one is used.</summary>
    public const int ExternalDataMinBytes = 1024;

    /// <summary>Serialized size of the model with every initializer inline (an upper-bound estimate).</summary>
    public long EstimatedInlineBytes => InitializerBytes + 64L * (_nodes.Count + _initializers.Count) + (1 << 20);

    /// <summary>
    /// The ModelProto bytes. With <paramref name="externalData"/>, initializers of at least
    /// <see cref="ExternalDataMinBytes"/> are appended to that stream instead and referenced by
    /// <paramref name="externalLocation"/> (a file name relative to the model, ONNX's external-data convention).
    /// </summary>
    public byte[] Serialize(string graphName, string producerVersion, Stream? externalData = null, string? externalLocation = null)
    {
        if (externalData is not null && string.IsNullOrEmpty(externalLocation))
            throw new ArgumentException("an external-data stream needs its location", nameof(externalLocation));
        var graph = new ProtoWriter();
        foreach (var node in _nodes) graph.Message(1, NodeProto(node));
        graph.String(2, graphName);
        foreach (var init in _initializers)
        {
            bool external = externalData is not null && init.Raw.Length >= ExternalDataMinBytes;
            graph.Message(5, external ? ExternalTensorProto(init, externalData!, externalLocation!) : TensorProto(init));
            if (graph.Length > MaxSerializedBytes)
                throw new QuantSharpException(
                    $"the ONNX graph exceeds protobuf's 2 GiB message limit even with external data (at initializer '{init.Name}').");
        }
        foreach (var input in Inputs) graph.Message(11, ValueInfoProto(input));
        foreach (var output in Outputs) graph.Message(12, ValueInfoProto(output));

        var model = new ProtoWriter();
        model.Varint(1, IrVersion);
        model.String(2, "QuantSharp");
        model.String(3, producerVersion);
        model.Message(7, graph);
        model.Message(8, OpsetProto("", OnnxOpset));
        model.Message(8, OpsetProto(MicrosoftDomain, 1));
        return model.Written.ToArray();
    }

    /// <summary>TensorProto whose bytes live in the external file: external_data (13) location/offset/length, data_location (14) = EXTERNAL.</summary>
    private static ProtoWriter ExternalTensorProto(OnnxInitializer t, Stream data, string location)
    {
        long offset = data.Position;
        data.Write(t.Raw);
        var w = new ProtoWriter();
        foreach (long d in t.Dims) w.Varint(1, d);
        w.Varint(2, (long)t.Type);
        w.String(8, t.Name);
        foreach (var (key, value) in new[] { ("location", location), ("offset", offset.ToString(CultureInfo.InvariantCulture)), ("length", t.Raw.LongLength.ToString(CultureInfo.InvariantCulture)) })
        {
            var entry = new ProtoWriter();
            entry.String(1, key);
            entry.String(2, value);
            w.Message(13, entry);
        }
        w.Varint(14, 1);
        return w;
    }

    private static ProtoWriter OpsetProto(string domain, long version)
    {
        var w = new ProtoWriter();
        w.String(1, domain);
        w.Varint(2, version);
        return w;
    }

    private static ProtoWriter NodeProto(OnnxNode node)
    {
        var w = new ProtoWriter();
        foreach (string input in node.Inputs) w.String(1, input);
        foreach (string output in node.Outputs) w.String(2, output);
        w.String(3, node.Name);
        w.String(4, node.OpType);
        foreach (var a in node.Attributes) w.Message(5, AttributeProto(a));
        if (node.Domain.Length > 0) w.String(7, node.Domain);
        return w;
    }

    private static ProtoWriter AttributeProto(OnnxAttribute a)
    {
        var w = new ProtoWriter();
        w.String(1, a.Name);
        if (a.Int is long i) { w.Varint(3, i); w.Varint(20, 2); }
        else if (a.Float is float f) { w.Float(2, f); w.Varint(20, 1); }
        else if (a.Ints is long[] ints) { foreach (long v in ints) w.Varint(8, v); w.Varint(20, 7); }
        else throw new InvalidOperationException($"attribute '{a.Name}' has no value");
        return w;
    }

    private static ProtoWriter TensorProto(OnnxInitializer t)
    {
        var w = new ProtoWriter();
        foreach (long d in t.Dims) w.Varint(1, d);
        w.Varint(2, (long)t.Type);
        w.String(8, t.Name);
        w.Bytes(9, t.Raw);
        return w;
    }

    private static ProtoWriter ValueInfoProto(OnnxValueInfo v)
    {
        var shape = new ProtoWriter();
        foreach (object d in v.Shape)
        {
            var dim = new ProtoWriter();
            if (d is string symbol) dim.String(2, symbol);
            else dim.Varint(1, Convert.ToInt64(d, CultureInfo.InvariantCulture));
            shape.Message(1, dim);
        }
        var tensorType = new ProtoWriter();
        tensorType.Varint(1, (long)v.Type);
        tensorType.Message(2, shape);
        var type = new ProtoWriter();
        type.Message(1, tensorType);
        var w = new ProtoWriter();
        w.String(1, v.Name);
        w.Message(2, type);
        return w;
    }
}
