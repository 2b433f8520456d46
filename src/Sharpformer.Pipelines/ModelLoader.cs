using System.Globalization;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.NN;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>Resolves "org/name" or a local folder to files (through the Hub client and its cache), then loads tokenizer and model.</summary>
internal static class ModelLoader
{
    /// <summary>The tokenizer and the base encoder (AutoModel: bert, roberta, distilbert) of a model.</summary>
    public static async Task<(TextTokenizer Tokenizer, ITextEncoder Model)> LoadEncoderAsync(
        string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        var (tokenizer, model, _) = await LoadEncoderWithFolderAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        return (tokenizer, model);
    }

    /// <summary>The tokenizer, the base encoder and the folder they were read from.</summary>
    public static async Task<(TextTokenizer Tokenizer, ITextEncoder Model, string Folder)> LoadEncoderWithFolderAsync(
        string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        var files = await ModelFolders.ResolveAsync(modelIdOrFolder, options ?? new PipelineOptions(), EncoderFolderHint, ct).ConfigureAwait(false);
        var tokenizer = AutoTokenizer.FromPretrained(files.Directory);
        var model = WithPrecision(AutoModel.FromPretrained(files.Directory), options) as ITextEncoder
            ?? throw new NotSupportedException($"{files.Directory}: the pipelines run text encoders (BERT, RoBERTa, DistilBERT); this model_type is not one.");
        return (tokenizer, model, files.Directory);
    }

    /// <summary>The tokenizer and the masked-LM model (AutoModelForMaskedLM) of a model; a checkpoint without an MLM head (cls.predictions, vocab_transform) is refused.</summary>
    public static async Task<(TextTokenizer Tokenizer, IMaskedLanguageModel Model)> LoadMaskedLmAsync(
        string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        var files = await ModelFolders.ResolveAsync(modelIdOrFolder, options ?? new PipelineOptions(), MaskedLmFolderHint, ct).ConfigureAwait(false);
        using (var weights = SafeTensorsLoader.Open(files.Directory))
        {
            if (!weights.Contains("cls.predictions.transform.dense.weight") && !weights.Contains("vocab_transform.weight"))
            {
                throw new NotSupportedException(
                    $"{modelIdOrFolder}: fill-mask needs a model with a masked-LM head (BertForMaskedLM: cls.predictions.* tensors; DistilBertForMaskedLM: vocab_transform.*); this checkpoint is a bare encoder. Use a *ForMaskedLM checkpoint such as bert-base-uncased, or the embed verb for encoders.");
            }
        }

        var tokenizer = AutoTokenizer.FromPretrained(files.Directory);
        var model = WithPrecision(AutoModelForMaskedLM.FromPretrained(files.Directory), options) as IMaskedLanguageModel
            ?? throw new NotSupportedException($"{files.Directory}: fill-mask runs masked language models (BERT, DistilBERT); this model_type has no masked-LM head here.");
        return (tokenizer, model);
    }

    /// <summary>Sets <see cref="PipelineOptions.Precision"/> on the model's linear layers (nothing for F32) and returns it.</summary>
    public static T WithPrecision<T>(T model, PipelineOptions? options)
    {
        if (options is { Precision: not LinearPrecision.F32 } && model is Module module)
        {
            InferencePrecision.Apply(module, options.Precision);
        }

        return model;
    }

    private const string EncoderFolderHint =
        "pass --model a local folder with config.json, model.safetensors and vocab.txt (e.g. one made by `sharpformer convert onnx-bert`).";

    private const string MaskedLmFolderHint =
        "pass --model a local folder with a BertForMaskedLM or DistilBertForMaskedLM checkpoint (config.json, model.safetensors with cls.predictions.* or vocab_transform.*, vocab.txt).";

    /// <summary>HF's limit for one input: the tokenizer's model_max_length, capped by the position table.</summary>
    public static int MaxLength(TextTokenizer tokenizer, ITextEncoder model) => MaxLength(tokenizer, model.MaxPositions);

    /// <summary>HF's limit for one input: the tokenizer's model_max_length, capped by <paramref name="maxPositions"/>.</summary>
    public static int MaxLength(TextTokenizer tokenizer, int maxPositions) =>
        Math.Min(tokenizer.ModelMaxLength > 0 ? tokenizer.ModelMaxLength : int.MaxValue, maxPositions);

    /// <summary>Encodes <paramref name="text"/>, failing (or truncating, if asked) when it is longer than the model allows.</summary>
    public static TokenEncoding EncodeChecked(TextTokenizer tokenizer, ITextEncoder model, string text, PipelineOptions options) =>
        EncodeChecked(tokenizer, MaxLength(tokenizer, model), text, null, options, nameof(text));

    /// <summary>
    /// Encodes a text (or pair) within <paramref name="limit"/> tokens: too long fails with a message that names the limit,
    /// unless <see cref="PipelineOptions.Truncation"/> is on — then it is cut down (longest first, as HF's
    /// <c>truncation=True</c>) and a warning says how long it was and what was kept, instead of cutting silently.
    /// </summary>
    public static TokenEncoding EncodeChecked(TextTokenizer tokenizer, int limit, string text, string? textPair, PipelineOptions options, string parameter)
    {
        ArgumentNullException.ThrowIfNull(text);
        ArgumentNullException.ThrowIfNull(options);
        var encoding = tokenizer.Encode(text, textPair);
        if (encoding.Count <= limit) return encoding;
        if (!options.Truncation)
        {
            throw new ArgumentException(
                $"The input is {encoding.Count} tokens long but the model takes at most {limit} (model_max_length); shorten it, or turn truncation on (PipelineOptions.Truncation, --truncate) to keep the first {limit} tokens.",
                parameter);
        }

        var cut = tokenizer.Encode(text, textPair, new EncodeOptions { Truncation = true, MaxLength = limit });
        int keptChars = cut.Offsets.Where((o, i) => cut.SequenceIds[i] == 0).Select(o => o.End).DefaultIfEmpty(0).Max();
        options.Warning?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"an input of {encoding.Count:N0} tokens ({text.Length:N0} characters) was cut to the model's {limit} tokens: only its first {keptChars:N0} characters count."));
        return cut;
    }
}
