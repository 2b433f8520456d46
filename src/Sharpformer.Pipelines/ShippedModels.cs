namespace Sharpformer.Pipelines;

/// <summary>
/// The models pretrained by this project and shipped with it (repository folder <c>models/sharpformer/&lt;name&gt;/</c>,
/// copied beside the sharpformer command and into its tool package): loaded by the names <c>sharpformer/bert-mini-en</c>,
/// <c>sharpformer/gpt-mini-en</c> and <c>sharpformer/transformer-de-en</c> without the Hub, and used in place of the Hugging Face default models when those
/// cannot be had (no network, nothing cached). <see cref="ModelFolders"/> applies both rules.
/// </summary>
public static class ShippedModels
{
    /// <summary>The environment variable that moves the shipped-models root (tests point it at a folder of small models).</summary>
    public const string RootVariable = "SHARPFORMER_SHIPPED_MODELS";

    /// <summary>The namespace of the shipped models' names.</summary>
    public const string Namespace = "sharpformer";

    /// <summary>The shipped BERT (masked LM, WordPiece): the offline stand-in for bert-base-uncased.</summary>
    public const string BertMini = "sharpformer/bert-mini-en";

    /// <summary>The shipped GPT-2-architecture model (causal LM, byte-level BPE): the offline stand-in for gpt2.</summary>
    public const string GptMini = "sharpformer/gpt-mini-en";

    /// <summary>The shipped original Transformer (encoder-decoder, German → English): the offline stand-in for Helsinki-NLP/opus-mt-de-en.</summary>
    public const string TransformerDeEn = "sharpformer/transformer-de-en";

    /// <summary>Every shipped model's name.</summary>
    public static IReadOnlyList<string> Names { get; } = [BertMini, GptMini, TransformerDeEn];

    /// <summary>
    /// Hugging Face default model → the shipped model used when it cannot be had. all-MiniLM-L6-v2 is not here: the real
    /// model itself ships with the command (BundledModels in the CLI).
    /// </summary>
    public static IReadOnlyDictionary<string, string> StandIns { get; } = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["bert-base-uncased"] = BertMini,
        ["google-bert/bert-base-uncased"] = BertMini,
        ["gpt2"] = GptMini,
        ["openai-community/gpt2"] = GptMini,
        ["Helsinki-NLP/opus-mt-de-en"] = TransformerDeEn,
    };

    /// <summary>
    /// Where the shipped models are: <c>$SHARPFORMER_SHIPPED_MODELS</c> when set, else the <c>models</c> folder beside the
    /// running program (where the CLI build and the tool package put them). A model <c>sharpformer/x</c> lives in
    /// <c>&lt;root&gt;/sharpformer/x/</c>.
    /// </summary>
    public static string Root => Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } root
        ? root
        : Path.Combine(AppContext.BaseDirectory, "models");

    /// <summary>Whether <paramref name="name"/> is a shipped model's name (<c>sharpformer/&lt;name&gt;</c>).</summary>
    public static bool IsShippedName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var parts = name.Split('/');
        return parts.Length == 2 && parts[0] == Namespace && parts[1].Length > 0 && parts[1] != "." && parts[1] != "..";
    }

    /// <summary>The folder of the shipped model <paramref name="name"/> when it is installed (has a config.json); else null.</summary>
    public static string? TryGetFolder(string name)
    {
        if (!IsShippedName(name))
        {
            return null;
        }

        var folder = Path.Combine(Root, name.Replace('/', Path.DirectorySeparatorChar));
        return File.Exists(Path.Combine(folder, "config.json")) ? folder : null;
    }

    /// <summary>The shipped stand-in for the Hugging Face model <paramref name="modelId"/>, or null when it has none.</summary>
    public static string? StandInFor(string modelId)
    {
        ArgumentNullException.ThrowIfNull(modelId);
        return StandIns.GetValueOrDefault(modelId);
    }
}
