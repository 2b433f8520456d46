using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.SafeTensors;

namespace Sharpformer.Pipelines;

/// <summary>
/// Which of sentence-transformers' pooling modes a model uses (<c>1_Pooling/config.json</c>). Several may be on: their
/// vectors are concatenated in the order of the properties here (cls, max, mean, mean-sqrt-len, weighted mean, last
/// token), as <c>sentence_transformers.models.Pooling</c> does.
/// </summary>
public sealed record PoolingConfig
{
    /// <summary>The first token's vector ([CLS]).</summary>
    public bool ClsToken { get; init; }

    /// <summary>The element-wise maximum over real tokens (padding set to -1e9).</summary>
    public bool MaxTokens { get; init; }

    /// <summary>The mean over real tokens: sum / max(count, 1e-9).</summary>
    public bool MeanTokens { get; init; }

    /// <summary>The sum over real tokens divided by √max(count, 1e-9).</summary>
    public bool MeanSqrtLenTokens { get; init; }

    /// <summary>A mean weighted by position (token t weighs t + 1), over real tokens.</summary>
    public bool WeightedMeanTokens { get; init; }

    /// <summary>The last real token's vector (zeros for a row with none).</summary>
    public bool LastToken { get; init; }

    /// <summary>Whether a prompt's tokens take part in pooling; false masks them out (as INSTRUCTOR-style models need).</summary>
    public bool IncludePrompt { get; init; } = true;

    /// <summary>Mean pooling, sentence-transformers' default.</summary>
    public static PoolingConfig Mean { get; } = new() { MeanTokens = true };

    /// <summary>How many modes are on: the pooled vector is that many times C long.</summary>
    public int ModeCount => (ClsToken ? 1 : 0) + (MaxTokens ? 1 : 0) + (MeanTokens ? 1 : 0) + (MeanSqrtLenTokens ? 1 : 0)
        + (WeightedMeanTokens ? 1 : 0) + (LastToken ? 1 : 0);
}

/// <summary>One module sentence-transformers runs on the pooled vector: <see cref="DenseModule"/> or <see cref="NormalizeModule"/>.</summary>
public abstract record SentenceModule
{
    /// <summary>[B, In] → [B, Out] (In = Out for modules that keep the length).</summary>
    /// <param name="rows">B·In values, row-major.</param>
    /// <param name="batch">B.</param>
    /// <returns>B·Out values.</returns>
    public abstract float[] Apply(float[] rows, int batch);

    /// <summary>The length a pooled vector of <paramref name="inFeatures"/> has after this module.</summary>
    /// <param name="inFeatures">In.</param>
    /// <returns>Out.</returns>
    public abstract int OutputLength(int inFeatures);
}

/// <summary><c>sentence_transformers.models.Normalize</c>: each row divided by max(‖row‖₂, 1e-12).</summary>
public sealed record NormalizeModule : SentenceModule
{
    /// <inheritdoc/>
    public override float[] Apply(float[] rows, int batch)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (batch > 0)
        {
            Pooling.L2Normalize(rows, rows.Length / batch);
        }

        return rows;
    }

    /// <inheritdoc/>
    public override int OutputLength(int inFeatures) => inFeatures;
}

/// <summary>The activation of a <see cref="DenseModule"/>, named in its config by the torch class.</summary>
public enum DenseActivation
{
    /// <summary><c>torch.nn.modules.linear.Identity</c>.</summary>
    Identity,

    /// <summary><c>torch.nn.modules.activation.Tanh</c> (sentence-transformers' default).</summary>
    Tanh,

    /// <summary><c>torch.nn.modules.activation.ReLU</c>.</summary>
    Relu,

    /// <summary><c>torch.nn.modules.activation.Sigmoid</c>.</summary>
    Sigmoid,
}

/// <summary><c>sentence_transformers.models.Dense</c>: y [B, Out] = activation(x [B, In] · Wᵀ + b), with W [Out, In] from the module's folder.</summary>
public sealed record DenseModule : SentenceModule
{
    /// <summary>In.</summary>
    public required int InFeatures { get; init; }

    /// <summary>Out.</summary>
    public required int OutFeatures { get; init; }

    /// <summary>W [Out, In], row-major (<c>linear.weight</c>).</summary>
    public required float[] Weight { get; init; }

    /// <summary>b [Out] (<c>linear.bias</c>), or null.</summary>
    public float[]? Bias { get; init; }

    /// <summary>The activation after the linear map.</summary>
    public DenseActivation Activation { get; init; } = DenseActivation.Tanh;

    /// <inheritdoc/>
    public override int OutputLength(int inFeatures) => OutFeatures;

    /// <inheritdoc/>
    /// <exception cref="ArgumentException">The rows are not B × In.</exception>
    public override float[] Apply(float[] rows, int batch)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Length != (long)batch * InFeatures)
        {
            throw new ArgumentException($"Dense: {rows.Length} values are not B {batch} × In {InFeatures}; the pooled vector does not match the Dense module's in_features.", nameof(rows));
        }

        var output = new float[batch * OutFeatures];
        for (var b = 0; b < batch; b++)
        {
            var x = rows.AsSpan(b * InFeatures, InFeatures);
            for (var o = 0; o < OutFeatures; o++)
            {
                var w = Weight.AsSpan(o * InFeatures, InFeatures);
                double sum = Bias?[o] ?? 0;
                for (var i = 0; i < InFeatures; i++)
                {
                    sum += (double)x[i] * w[i];
                }

                output[(b * OutFeatures) + o] = Activate((float)sum);
            }
        }

        return output;
    }

    private float Activate(float v) => Activation switch
    {
        DenseActivation.Tanh => MathF.Tanh(v),
        DenseActivation.Relu => Math.Max(v, 0f),
        DenseActivation.Sigmoid => 1f / (1f + MathF.Exp(-v)),
        _ => v,
    };
}

/// <summary>
/// How a sentence-transformers folder turns encoder output into an embedding, read from its files: <c>modules.json</c>
/// (Transformer → Pooling → Dense/Normalize…), <c>sentence_bert_config.json</c> (max_seq_length, do_lower_case),
/// <c>1_Pooling/config.json</c>, each Dense module's <c>config.json</c> + weights, and
/// <c>config_sentence_transformers.json</c> (prompts, default_prompt_name).
/// </summary>
public sealed record SentenceTransformerConfig
{
    /// <summary>Inputs longer than this many tokens (special tokens included) are truncated; null: the tokenizer's and model's limit.</summary>
    public int? MaxSeqLength { get; init; }

    /// <summary>Lowercase each text (prompt included) before tokenizing.</summary>
    public bool DoLowerCase { get; init; }

    /// <summary>The pooling module's modes.</summary>
    public PoolingConfig Pooling { get; init; } = PoolingConfig.Mean;

    /// <summary>The modules after pooling, in order (Dense, Normalize).</summary>
    public IReadOnlyList<SentenceModule> AfterPooling { get; init; } = [];

    /// <summary>Named prompts (e.g. "query" → "query: "), prepended to each text when chosen by name.</summary>
    public IReadOnlyDictionary<string, string> Prompts { get; init; } = new Dictionary<string, string>();

    /// <summary>The prompt used when none is named, or null.</summary>
    public string? DefaultPromptName { get; init; }

    /// <summary>
    /// What a folder without <c>modules.json</c> gets: mean pooling then L2 normalisation (all-MiniLM-L6-v2's modules,
    /// the embed verb's default model, also when converted from ONNX without its sentence-transformers files).
    /// </summary>
    public static SentenceTransformerConfig Default { get; } = new() { AfterPooling = [new NormalizeModule()] };

    private const string TransformerType = "sentence_transformers.models.Transformer";
    private const string PoolingType = "sentence_transformers.models.Pooling";
    private const string NormalizeType = "sentence_transformers.models.Normalize";
    private const string DenseType = "sentence_transformers.models.Dense";

    /// <summary>Reads the sentence-transformers files of <paramref name="folder"/>; <see cref="Default"/> when it has no modules.json.</summary>
    /// <param name="folder">The model folder.</param>
    /// <returns>The config.</returns>
    /// <exception cref="InvalidDataException">A file is malformed; the message names the file and the key.</exception>
    /// <exception cref="NotSupportedException">modules.json names a module type other than Transformer, Pooling, Dense, Normalize.</exception>
    public static SentenceTransformerConfig Load(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        var modulesPath = Path.Combine(folder, "modules.json");
        var config = File.Exists(modulesPath) ? ReadModules(folder, modulesPath) : Default;

        var bertConfig = ReadObject(Path.Combine(folder, "sentence_bert_config.json"));
        if (bertConfig is not null)
        {
            var path = Path.Combine(folder, "sentence_bert_config.json");
            config = config with
            {
                MaxSeqLength = OptionalInt(bertConfig, "max_seq_length", path),
                DoLowerCase = OptionalBool(bertConfig, "do_lower_case", path) ?? false,
            };
            if (config.MaxSeqLength is < 2)
            {
                throw new InvalidDataException($"{path}: max_seq_length {config.MaxSeqLength} leaves no room for the text; it must be at least 2 ([CLS] and [SEP]).");
            }
        }

        var stPath = Path.Combine(folder, "config_sentence_transformers.json");
        var stConfig = ReadObject(stPath);
        if (stConfig is not null)
        {
            var prompts = new Dictionary<string, string>(StringComparer.Ordinal);
            if (stConfig["prompts"] is JsonObject promptObject)
            {
                foreach (var (name, value) in promptObject)
                {
                    prompts[name] = value is JsonValue v && v.TryGetValue<string>(out var text)
                        ? text
                        : throw new InvalidDataException($"{stPath}: prompts.{name} must be a string.");
                }
            }

            string? defaultName = stConfig["default_prompt_name"] is JsonValue d && d.TryGetValue<string>(out var n) ? n : null;
            if (!string.IsNullOrEmpty(defaultName) && !prompts.ContainsKey(defaultName))
            {
                throw new InvalidDataException(
                    $"{stPath}: default_prompt_name '{defaultName}' is not one of the prompts ({string.Join(", ", prompts.Keys)}); add it to \"prompts\" or set it to null.");
            }

            config = config with { Prompts = prompts, DefaultPromptName = string.IsNullOrEmpty(defaultName) ? null : defaultName };
        }

        return config;
    }

    /// <summary>The prompt text for <paramref name="promptName"/>, or the default prompt when it is null; null when there is none.</summary>
    /// <param name="promptName">A key of <see cref="Prompts"/>, or null.</param>
    /// <returns>The prompt, or null.</returns>
    /// <exception cref="ArgumentException">The name is not one of the model's prompts; the message lists them.</exception>
    public string? ResolvePrompt(string? promptName)
    {
        if (promptName is null)
        {
            return DefaultPromptName is { } name ? Prompts[name] : null;
        }

        if (Prompts.TryGetValue(promptName, out var prompt))
        {
            return prompt;
        }

        var known = Prompts.Count == 0 ? "this model defines none (config_sentence_transformers.json \"prompts\")" : "it has " + string.Join(", ", Prompts.Keys.Select(k => $"'{k}'"));
        throw new ArgumentException($"Prompt name '{promptName}' is not one of the model's prompts: {known}.", nameof(promptName));
    }

    /// <summary>The embedding length for an encoder of <paramref name="hiddenSize"/>: pooled modes × C, then through each module.</summary>
    /// <param name="hiddenSize">C.</param>
    /// <returns>The length.</returns>
    public int Dimensions(int hiddenSize)
    {
        int dim = hiddenSize * Pooling.ModeCount;
        foreach (var module in AfterPooling)
        {
            dim = module.OutputLength(dim);
        }

        return dim;
    }

    private static SentenceTransformerConfig ReadModules(string folder, string modulesPath)
    {
        JsonArray modules;
        try
        {
            modules = JsonNode.Parse(File.ReadAllText(modulesPath)) as JsonArray
                ?? throw new InvalidDataException($"{modulesPath}: expected a JSON array of modules.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{modulesPath}: not valid JSON ({e.Message}).", e);
        }

        var pooling = (PoolingConfig?)null;
        var after = new List<SentenceModule>();
        var index = 0;
        foreach (var node in modules)
        {
            var type = node?["type"]?.GetValue<string>()
                ?? throw new InvalidDataException($"{modulesPath}: module {index} has no \"type\".");
            var relative = node["path"]?.GetValue<string>() ?? "";
            var moduleFolder = Path.Combine(folder, relative);
            switch (type)
            {
                case TransformerType when index == 0:
                    break;
                case PoolingType when pooling is null && after.Count == 0:
                    pooling = ReadPooling(Path.Combine(moduleFolder, "config.json"));
                    break;
                case NormalizeType when pooling is not null:
                    after.Add(new NormalizeModule());
                    break;
                case DenseType when pooling is not null:
                    after.Add(ReadDense(moduleFolder));
                    break;
                default:
                    throw new NotSupportedException(
                        $"{modulesPath}: module {index} is {type}; the embedding pipeline runs Transformer, then Pooling, then Dense and Normalize modules in that shape.");
            }

            index++;
        }

        if (pooling is null)
        {
            throw new NotSupportedException($"{modulesPath}: there is no {PoolingType} module; the embedding pipeline needs one to turn token vectors into a sentence vector.");
        }

        return new SentenceTransformerConfig { Pooling = pooling, AfterPooling = after };
    }

    private static PoolingConfig ReadPooling(string path)
    {
        var json = ReadObject(path) ?? throw new InvalidDataException($"{path}: missing; the Pooling module in modules.json needs its config.json.");
        var config = new PoolingConfig
        {
            ClsToken = OptionalBool(json, "pooling_mode_cls_token", path) ?? false,
            MaxTokens = OptionalBool(json, "pooling_mode_max_tokens", path) ?? false,
            MeanTokens = OptionalBool(json, "pooling_mode_mean_tokens", path) ?? false,
            MeanSqrtLenTokens = OptionalBool(json, "pooling_mode_mean_sqrt_len_tokens", path) ?? false,
            WeightedMeanTokens = OptionalBool(json, "pooling_mode_weightedmean_tokens", path) ?? false,
            LastToken = OptionalBool(json, "pooling_mode_lasttoken", path) ?? false,
            IncludePrompt = OptionalBool(json, "include_prompt", path) ?? true,
        };
        if (config.ModeCount == 0)
        {
            throw new InvalidDataException($"{path}: no pooling_mode_* is true; turn on one of cls_token, mean_tokens, max_tokens, mean_sqrt_len_tokens, weightedmean_tokens, lasttoken.");
        }

        return config;
    }

    private static DenseModule ReadDense(string folder)
    {
        var path = Path.Combine(folder, "config.json");
        var json = ReadObject(path) ?? throw new InvalidDataException($"{path}: missing; the Dense module in modules.json needs its config.json.");
        int inFeatures = OptionalInt(json, "in_features", path) ?? throw new InvalidDataException($"{path}: in_features is missing.");
        int outFeatures = OptionalInt(json, "out_features", path) ?? throw new InvalidDataException($"{path}: out_features is missing.");
        bool hasBias = OptionalBool(json, "bias", path) ?? true;
        var activationName = json["activation_function"] is JsonValue a && a.TryGetValue<string>(out var s) ? s : "torch.nn.modules.activation.Tanh";
        var activation = activationName switch
        {
            "torch.nn.modules.activation.Tanh" => DenseActivation.Tanh,
            "torch.nn.modules.linear.Identity" => DenseActivation.Identity,
            "torch.nn.modules.activation.ReLU" => DenseActivation.Relu,
            "torch.nn.modules.activation.Sigmoid" => DenseActivation.Sigmoid,
            _ => throw new NotSupportedException($"{path}: activation_function {activationName} is not supported; the Dense module runs Tanh, Identity, ReLU or Sigmoid."),
        };

        var weightsPath = Path.Combine(folder, "model.safetensors");
        if (!File.Exists(weightsPath))
        {
            throw new NotSupportedException(
                $"{folder}: the Dense module's weights must be in model.safetensors (linear.weight, linear.bias); convert a pytorch_model.bin with sentence-transformers' save (safe_serialization=True).");
        }

        using var source = SafeTensorsLoader.Open(weightsPath);
        var weight = source.GetTensorAsF32("linear.weight");
        if (weight.Shape.Rank != 2 || weight.Shape[0] != outFeatures || weight.Shape[1] != inFeatures)
        {
            throw new InvalidDataException($"{weightsPath}: linear.weight is {weight.Shape}; config.json says [{outFeatures}, {inFeatures}] (out_features, in_features).");
        }

        float[]? bias = null;
        if (hasBias)
        {
            var b = source.GetTensorAsF32("linear.bias");
            if (b.Shape.Rank != 1 || b.Shape[0] != outFeatures)
            {
                throw new InvalidDataException($"{weightsPath}: linear.bias is {b.Shape}; config.json says [{outFeatures}].");
            }

            bias = b.ToArray();
        }

        return new DenseModule { InFeatures = inFeatures, OutFeatures = outFeatures, Weight = weight.ToArray(), Bias = bias, Activation = activation };
    }

    private static JsonObject? ReadObject(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException($"{path}: expected a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }
    }

    private static bool? OptionalBool(JsonObject json, string key, string path) => json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<bool>(out var b) => b,
        _ => throw new InvalidDataException($"{path}: {key} must be true or false."),
    };

    private static int? OptionalInt(JsonObject json, string key, string path) => json[key] switch
    {
        null => null,
        JsonValue v when v.TryGetValue<int>(out var i) => i,
        JsonValue v when v.TryGetValue<double>(out var d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue => (int)d,
        var other => throw new InvalidDataException(string.Create(CultureInfo.InvariantCulture, $"{path}: {key} must be an integer, got {other.ToJsonString()}.")),
    };
}
