namespace Sharpformer.IO.Onnx;

/// <summary>
/// Lookups over one <see cref="OnnxGraph"/> for pattern matching: which node produces a value, which nodes read it, and
/// which values are constants (initializers or Constant-node outputs).
/// </summary>
internal sealed class OnnxGraphIndex
{
    private static readonly IReadOnlyList<OnnxNode> None = [];
    private readonly Dictionary<string, OnnxNode> _producers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<OnnxNode>> _consumers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, OnnxTensor> _constants = new(StringComparer.Ordinal);

    public OnnxGraphIndex(OnnxGraph graph)
    {
        Graph = graph;
        // Empty names mark omitted optional inputs in ONNX: they never name a value.
        foreach (var (name, tensor) in graph.Initializers)
        {
            if (name.Length > 0) _constants[name] = tensor;
        }

        foreach (var node in graph.Nodes)
        {
            foreach (string output in node.Outputs)
            {
                if (output.Length > 0) _producers[output] = node;
            }

            foreach (string input in node.Inputs)
            {
                if (input.Length == 0) continue;
                if (!_consumers.TryGetValue(input, out var list)) _consumers[input] = list = [];
                list.Add(node);
            }

            if (node.OpType == "Constant" && node.Outputs.Count == 1 && node.Outputs[0].Length > 0 && node.Attributes.TryGetValue("value", out var value) && value.Tensor is not null)
            {
                _constants[node.Outputs[0]] = value.Tensor;
            }
        }
    }

    public OnnxGraph Graph { get; }

    /// <summary>The node that writes <paramref name="value"/>, or null for graph inputs and initializers.</summary>
    public OnnxNode? Producer(string value) => _producers.GetValueOrDefault(value);

    /// <summary>The nodes that read <paramref name="value"/>.</summary>
    public IReadOnlyList<OnnxNode> Consumers(string value) => _consumers.TryGetValue(value, out var list) ? list : None;

    /// <summary>The constant tensor named <paramref name="value"/>, or null when it is computed at run time.</summary>
    public OnnxTensor? Constant(string value) => _constants.GetValueOrDefault(value);

    /// <summary>
    /// A non-empty floating-point constant of rank <paramref name="rank"/> named <paramref name="value"/> whose dimensions
    /// all fit in int, or null.
    /// </summary>
    public OnnxTensor? FloatConstant(string value, int rank)
    {
        var t = Constant(value);
        if (t is null || t.Dims.Count != rank || t.DataType is not (OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double))
        {
            return null;
        }

        foreach (long d in t.Dims)
        {
            if (d <= 0 || d > int.MaxValue) return null;
        }

        return t;
    }

    /// <summary>The values of an integer (INT64 or INT32) constant named <paramref name="value"/>, or null.</summary>
    public long[]? IntConstant(string value)
    {
        var t = Constant(value);
        return t is not null && t.DataType is OnnxDataType.Int64 or OnnxDataType.Int32 ? t.ToInt64Array() : null;
    }

    /// <summary>The single scalar value of a one-element floating-point constant, or null.</summary>
    public float? ScalarFloat(string value)
    {
        var t = Constant(value);
        if (t is null || t.ElementCount != 1) return null;
        return t.DataType is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double ? t.ToFloatArray()[0] : null;
    }

    /// <summary>The only consumer of <paramref name="value"/> with op <paramref name="opType"/>, or null when there is none or several.</summary>
    public OnnxNode? OnlyConsumer(string value, string opType)
    {
        OnnxNode? found = null;
        foreach (var node in Consumers(value))
        {
            if (node.OpType != opType) continue;
            if (found is not null) return null;
            found = node;
        }

        return found;
    }

    /// <summary>The input of a two-input node that is not <paramref name="value"/>, or null when the node does not read it.</summary>
    public static string? OtherInput(OnnxNode node, string value)
    {
        if (node.Inputs.Count != 2) return null;
        if (node.Inputs[0] == value) return node.Inputs[1];
        if (node.Inputs[1] == value) return node.Inputs[0];
        return null;
    }
}
