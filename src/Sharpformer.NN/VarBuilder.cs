using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.NN;

/// <summary>How a <see cref="VarBuilder"/> fills a tensor that does not come from a checkpoint.</summary>
/// <param name="Kind">Zeros, ones, or normal(0, Std).</param>
/// <param name="Std">Standard deviation for <see cref="InitKind.Normal"/>.</param>
public readonly record struct Init(InitKind Kind, float Std = 0f)
{
    /// <summary>All zeros (biases, LayerNorm beta).</summary>
    public static Init Zeros => new(InitKind.Zeros);

    /// <summary>All ones (LayerNorm gamma).</summary>
    public static Init Ones => new(InitKind.Ones);

    /// <summary>Normal(0, <paramref name="std"/>) (weights; BERT uses initializer_range 0.02).</summary>
    /// <param name="std">Standard deviation.</param>
    /// <returns>The init.</returns>
    public static Init Normal(float std) => new(InitKind.Normal, std);
}

/// <summary>The distributions of <see cref="Init"/>.</summary>
public enum InitKind
{
    /// <summary>All zeros.</summary>
    Zeros,

    /// <summary>All ones.</summary>
    Ones,

    /// <summary>Normal(0, std).</summary>
    Normal,
}

/// <summary>
/// Hands layers their tensors by path, as candle's VarBuilder does: <c>vb.Push("encoder").Push("layer", 3).Get([C, C], "weight")</c>
/// reads <c>encoder.layer.3.weight</c>, checks its shape and dtype (F16/BF16 are widened to F32), and records that it was
/// used, so <see cref="Report"/> can list the checkpoint tensors no layer asked for, like Hugging Face's load report.
/// A builder made by <see cref="FromInit"/> creates fresh tensors instead (random weights for training or tests).
/// Builders from one <c>From*</c> call share one store; <see cref="Push(string)"/> only extends the prefix.
/// </summary>
public sealed class VarBuilder
{
    private readonly VarStore _store;

    private VarBuilder(VarStore store, string prefix)
    {
        _store = store;
        Prefix = prefix;
    }

    /// <summary>The dotted path this builder prepends ("" at the root).</summary>
    public string Prefix { get; }

    /// <summary>Reads tensors from a safetensors checkpoint (copied into managed memory, so the source may be disposed afterwards).</summary>
    /// <param name="source">The checkpoint.</param>
    /// <param name="allowMissing">Initialize missing tensors with their <see cref="Init"/> and report them instead of throwing.</param>
    /// <param name="seed">Seed for the initialization of missing tensors.</param>
    /// <returns>The root builder.</returns>
    public static VarBuilder FromSafeTensors(ISafeTensorsSource source, bool allowMissing = false, int seed = 0)
    {
        ArgumentNullException.ThrowIfNull(source);
        var store = VarStore.FromSafeTensors(source);
        store.AllowMissing = allowMissing;
        store.Random = new Random(seed);
        return new VarBuilder(store, string.Empty);
    }

    /// <summary>Reads tensors from a name → tensor map.</summary>
    /// <param name="tensors">The tensors.</param>
    /// <param name="allowMissing">Initialize missing tensors with their <see cref="Init"/> and report them instead of throwing.</param>
    /// <returns>The root builder.</returns>
    public static VarBuilder FromTensors(IReadOnlyDictionary<string, Tensor> tensors, bool allowMissing = false)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var store = VarStore.FromTensors(tensors, "tensor map");
        store.AllowMissing = allowMissing;
        return new VarBuilder(store, string.Empty);
    }

    /// <summary>Creates every tensor from its <see cref="Init"/> (default normal(0, <paramref name="std"/>)), seeded.</summary>
    /// <param name="seed">Random seed.</param>
    /// <param name="std">Standard deviation for tensors requested without an init.</param>
    /// <returns>The root builder.</returns>
    public static VarBuilder FromInit(int seed = 0, float std = 0.02f)
    {
        var store = VarStore.FromTensors(new Dictionary<string, Tensor>(), "initializer");
        store.AllowMissing = true;
        store.InitOnly = true;
        store.DefaultStd = std;
        store.Random = new Random(seed);
        return new VarBuilder(store, string.Empty);
    }

    /// <summary>A builder whose paths are prefixed by <paramref name="name"/> ("encoder" → "encoder.").</summary>
    /// <param name="name">One or more dotted path segments.</param>
    /// <returns>The child builder (same store).</returns>
    public VarBuilder Push(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return new VarBuilder(_store, Path(name));
    }

    /// <summary>A builder prefixed by <paramref name="name"/>.<paramref name="index"/> ("layer", 3 → "layer.3.").</summary>
    /// <param name="name">Path segment.</param>
    /// <param name="index">Index segment.</param>
    /// <returns>The child builder (same store).</returns>
    public VarBuilder Push(string name, int index) => Push($"{name}.{index}");

    /// <summary>The full dotted name of <paramref name="name"/> under this builder.</summary>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <returns>Prefix + "." + name.</returns>
    public string Path(string name) => Prefix.Length == 0 ? name : Prefix + "." + name;

    /// <summary>True when the source holds a tensor at <see cref="Path"/>(<paramref name="name"/>) (false for <see cref="FromInit"/>).</summary>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <returns>Whether it exists.</returns>
    public bool Contains(string name) => _store.Contains(Path(name));

    /// <summary>The F32 tensor <see cref="Path"/>(<paramref name="name"/>) of shape <paramref name="shape"/>.</summary>
    /// <param name="shape">The shape the layer expects.</param>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <param name="init">How to create it when it is not read from a checkpoint (default normal(0, std)).</param>
    /// <returns>A managed F32 tensor the caller may own.</returns>
    /// <exception cref="ModelLoadException">The tensor is missing (and missing is not allowed), or its shape or dtype is wrong.</exception>
    public Tensor Get(Shape shape, string name, Init? init = null)
    {
        string path = Path(name);
        if (!_store.InitOnly && _store.Contains(path))
        {
            return _store.Fetch(path, shape);
        }

        if (!_store.AllowMissing)
        {
            throw new ModelLoadException(
                $"{_store.Description}: tensor '{path}' {shape} is missing. The checkpoint does not match this model: check model_type in config.json, or a prefix such as 'bert.'.");
        }

        if (!_store.InitOnly)
        {
            _store.Missing.Add(path);
        }

        return _store.Create(shape, init ?? Init.Normal(_store.DefaultStd));
    }

    /// <summary>
    /// The tensor <see cref="Path"/>(<paramref name="name"/>) of shape <paramref name="shape"/> in <paramref name="dtype"/>
    /// (HF's <c>torch_dtype</c>): a checkpoint tensor already stored in that type is copied as is (no F32 detour);
    /// otherwise it is converted (F32 → F16/BF16 rounds to nearest even).
    /// </summary>
    /// <param name="shape">The shape the layer expects.</param>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <param name="dtype">F32, F16 or BF16.</param>
    /// <param name="init">How to create it when it is not read from a checkpoint (default normal(0, std)).</param>
    /// <returns>A managed, contiguous tensor of <paramref name="dtype"/> the caller may own.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not a floating-point type.</exception>
    /// <exception cref="ModelLoadException">As <see cref="Get(Shape, string, Init?)"/>.</exception>
    public Tensor Get(Shape shape, string name, DType dtype, Init? init = null)
    {
        if (dtype is not (DType.F32 or DType.F16 or DType.BF16))
        {
            throw new ArgumentException($"VarBuilder.Get('{Path(name)}'): dtype {dtype} is not a weight type; use F32, F16 or BF16.", nameof(dtype));
        }

        string path = Path(name);
        if (!_store.InitOnly && _store.Contains(path))
        {
            return _store.Fetch(path, shape, dtype);
        }

        var created = Get(shape, name, init);
        return dtype == DType.F32 ? created : created.To(dtype);
    }

    /// <summary>A <see cref="Parameter"/> holding <see cref="Get(Shape, string, Init?)"/>(<paramref name="shape"/>, <paramref name="name"/>, <paramref name="init"/>).</summary>
    /// <param name="shape">The shape the layer expects.</param>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <param name="init">How to create it when it is not read from a checkpoint.</param>
    /// <returns>The parameter.</returns>
    /// <exception cref="ModelLoadException">As <see cref="Get(Shape, string, Init?)"/>.</exception>
    public Parameter GetParameter(Shape shape, string name, Init? init = null) => GetParameter(shape, name, DType.F32, init);

    /// <summary>
    /// A <see cref="Parameter"/> of <paramref name="shape"/> (the module's layout) in <paramref name="dtype"/>, its value
    /// in a 64-byte-aligned buffer (<see cref="Tensor.EmptyAligned"/>) that kernels stream directly. The checkpoint
    /// tensor is read in <paramref name="checkpointLayout"/> (for <see cref="ParameterLayout.Transposed"/>: shape
    /// [shape[1], shape[0]], HF's Conv1D [In, Out]) and transposed once. F32 parameters require gradients; F16/BF16 ones
    /// are inference-only.
    /// </summary>
    /// <param name="shape">The shape the layer holds (e.g. [Out, In]).</param>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    /// <param name="dtype">F32 (trainable), F16 or BF16 (inference only).</param>
    /// <param name="init">How to create it when it is not read from a checkpoint (default normal(0, std)).</param>
    /// <param name="checkpointLayout">How the checkpoint stores it.</param>
    /// <returns>The parameter.</returns>
    /// <exception cref="ArgumentException"><paramref name="dtype"/> is not F32, F16 or BF16, or a transposed layout is asked for a shape that is not 2-D.</exception>
    /// <exception cref="ModelLoadException">As <see cref="Get(Shape, string, Init?)"/>.</exception>
    public Parameter GetParameter(Shape shape, string name, DType dtype, Init? init = null, ParameterLayout checkpointLayout = ParameterLayout.AsIs)
    {
        if (checkpointLayout == ParameterLayout.Transposed && shape.Rank != 2)
        {
            throw new ArgumentException($"VarBuilder.GetParameter('{Path(name)}'): only a 2-D parameter can be stored transposed, got {shape}.", nameof(checkpointLayout));
        }

        var stored = checkpointLayout == ParameterLayout.Transposed ? new Shape(shape[1], shape[0]) : shape;
        var value = CheckpointLayouts.ToModel(Get(stored, name, dtype, init), checkpointLayout);
        var parameter = new Parameter(value, requiresGrad: dtype == DType.F32, checkpointLayout);
        parameter.OwnValue(); // Get made this buffer (a copy or a conversion of the checkpoint's): F16 may be coded in place
        return parameter;
    }

    /// <summary>Marks <see cref="Path"/>(<paramref name="name"/>) as used without loading it (a tied copy the model shares).</summary>
    /// <param name="name">A name relative to <see cref="Prefix"/>.</param>
    public void MarkUsed(string name) => _store.Used.Add(Path(name));

    /// <summary>What was loaded, what was missing (and initialized), which source tensors nothing used, and which were widened.</summary>
    /// <returns>The report over the whole store (all builders sharing it).</returns>
    public LoadReport Report() => new(_store.Used.Where(_store.Contains).Order(StringComparer.Ordinal).ToList(), [.. _store.Missing], _store.Unused(), _store.Converted);
}

/// <summary>The result of loading a checkpoint into a model, like Hugging Face's load report.</summary>
/// <param name="Loaded">Tensors read from the checkpoint.</param>
/// <param name="Missing">Tensors the model needs that the checkpoint lacks (initialized fresh).</param>
/// <param name="Unused">Checkpoint tensors no layer asked for.</param>
/// <param name="Converted">Tensors widened from F16/BF16 to F32.</param>
public sealed record LoadReport(IReadOnlyList<string> Loaded, IReadOnlyList<string> Missing, IReadOnlyList<string> Unused, IReadOnlyList<string> Converted)
{
    /// <summary>One line: counts, then up to 10 names of each missing and unused list.</summary>
    /// <returns>The description.</returns>
    public string Describe()
    {
        string List(IReadOnlyList<string> names) => string.Join(", ", names.Take(10)) + (names.Count > 10 ? $", … ({names.Count - 10} more)" : string.Empty);
        var parts = new List<string> { $"{Loaded.Count} loaded" };
        if (Missing.Count > 0) parts.Add($"{Missing.Count} missing ({List(Missing)})");
        if (Unused.Count > 0) parts.Add($"{Unused.Count} unused ({List(Unused)})");
        if (Converted.Count > 0) parts.Add($"{Converted.Count} widened to F32");
        return string.Join("; ", parts);
    }
}

/// <summary>A checkpoint does not fit the model: a tensor is missing, unexpected, or has the wrong shape or dtype.</summary>
public sealed class ModelLoadException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ModelLoadException()
    {
    }

    /// <summary>Creates the exception with a message that names the tensor and the fix.</summary>
    /// <param name="message">The message.</param>
    public ModelLoadException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and a cause.</summary>
    /// <param name="message">The message.</param>
    /// <param name="innerException">The cause.</param>
    public ModelLoadException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>The tensors behind a family of <see cref="VarBuilder"/>s, and the bookkeeping of what was used.</summary>
internal sealed class VarStore
{
    private readonly Func<string, bool> _contains;
    private readonly Func<string, (Tensor Tensor, string DType)> _read;
    private readonly Func<string, Tensor> _readStored;
    private readonly Func<IEnumerable<string>> _names;

    private VarStore(string description, Func<string, bool> contains, Func<string, (Tensor, string)> read, Func<string, Tensor> readStored, Func<IEnumerable<string>> names)
    {
        Description = description;

        // Checkpoints converted from TensorFlow-era BERT name LayerNorm parameters "gamma"/"beta" (bert-base-uncased's own
        // model.safetensors does). Hugging Face renames them to "weight"/"bias" on load; so do we, here and only here, so
        // every model sees one naming. The report lists the canonical names.
        var legacy = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string name in names())
        {
            string? canonical = CanonicalName(name);
            if (canonical is not null && !contains(canonical))
            {
                legacy[canonical] = name;
            }
        }

        if (legacy.Count == 0)
        {
            _contains = contains;
            _read = read;
            _readStored = readStored;
            _names = names;
        }
        else
        {
            var renamed = new HashSet<string>(legacy.Values, StringComparer.Ordinal);
            _contains = name => legacy.ContainsKey(name) || (!renamed.Contains(name) && contains(name));
            _read = name => read(legacy.GetValueOrDefault(name, name));
            _readStored = name => readStored(legacy.GetValueOrDefault(name, name));
            _names = () => names().Select(n => renamed.Contains(n) ? CanonicalName(n)! : n);
        }
    }

    /// <summary>The Hugging Face name of a legacy "….LayerNorm.gamma" / "….LayerNorm.beta" tensor, or null for any other name.</summary>
    internal static string? CanonicalName(string name)
    {
        if (name.EndsWith("LayerNorm.gamma", StringComparison.Ordinal))
        {
            return string.Concat(name.AsSpan(0, name.Length - "gamma".Length), "weight");
        }

        if (name.EndsWith("LayerNorm.beta", StringComparison.Ordinal))
        {
            return string.Concat(name.AsSpan(0, name.Length - "beta".Length), "bias");
        }

        return null;
    }

    public string Description { get; }

    public HashSet<string> Used { get; } = new(StringComparer.Ordinal);

    public List<string> Missing { get; } = [];

    public List<string> Converted { get; } = [];

    public bool AllowMissing { get; set; }

    public bool InitOnly { get; set; }

    public float DefaultStd { get; set; } = 0.02f;

    public Random Random { get; set; } = new(0);

    public static VarStore FromSafeTensors(ISafeTensorsSource source) => new(
        "safetensors checkpoint",
        source.Contains,
        name => (source.GetTensorAsF32(name), source.GetInfo(name).DType.ToString()),
        // As stored when it has a tensor type (a zero-copy view of the map); other float types (F64, FP8) widened.
        name => source.GetInfo(name).DType.ToTensorDType() is null ? source.GetTensorAsF32(name) : source.GetTensor(name),
        () => source.Tensors.Select(t => t.Name));

    public static VarStore FromTensors(IReadOnlyDictionary<string, Tensor> tensors, string description) => new(
        description,
        tensors.ContainsKey,
        name =>
        {
            var t = tensors[name];
            return (t, t.DType.ToString());
        },
        name => tensors[name],
        () => tensors.Keys);

    public bool Contains(string name) => _contains(name);

    /// <summary>Reads <paramref name="name"/>, checks <paramref name="shape"/>, and returns an owned, contiguous F32 copy.</summary>
    public Tensor Fetch(string name, Shape shape)
    {
        var (tensor, dtype) = _read(name);
        Accept(name, tensor, shape);
        if (dtype is "F16" or "BF16" || tensor.DType is DType.F16 or DType.BF16)
        {
            Converted.Add(name);
        }

        // Always copy: the model then owns writable memory and the source may be disposed.
        return tensor.DType == DType.F32 ? tensor.Clone() : tensor.To(DType.F32);
    }

    /// <summary>Reads <paramref name="name"/> as stored, checks <paramref name="shape"/>, and returns an owned, contiguous copy in <paramref name="dtype"/>.</summary>
    public Tensor Fetch(string name, Shape shape, DType dtype)
    {
        var tensor = _readStored(name);
        Accept(name, tensor, shape);
        if (dtype == DType.F32 && tensor.DType is DType.F16 or DType.BF16)
        {
            Converted.Add(name);
        }

        // One tensor at a time: a stored F16 weight asked for as F16 is copied as is, never through F32.
        return tensor.DType == dtype ? tensor.Clone() : tensor.To(dtype);
    }

    /// <summary>Checks a fetched tensor's shape and that it holds floating-point values, then marks it used.</summary>
    private void Accept(string name, Tensor tensor, Shape shape)
    {
        if (tensor.Shape != shape)
        {
            throw new ModelLoadException(
                $"{Description}: tensor '{name}' has shape {tensor.Shape} but the model expects {shape}. The checkpoint was made for another configuration: check config.json (hidden_size, vocab_size, intermediate_size, ...).");
        }

        if (tensor.DType is DType.I32 or DType.I64)
        {
            throw new ModelLoadException($"{Description}: tensor '{name}' {shape} holds integers ({tensor.DType}) but the model expects floating-point weights; the checkpoint is not a model of this type.");
        }

        Used.Add(name);
    }

    public Tensor Create(Shape shape, Init init) => init.Kind switch
    {
        InitKind.Zeros => Tensor.Zeros(shape),
        InitKind.Ones => Tensor.Ones(shape),
        _ => Tensor.RandomNormal(shape, Random, 0f, init.Std),
    };

    public List<string> Unused() => _names().Where(n => !Used.Contains(n)).Order(StringComparer.Ordinal).ToList();
}
