using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading.Channels;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Generation;

/// <summary>The text-to-text tasks of Hugging Face's pipelines; they differ in default model, T5 prefix and result key.</summary>
public enum Text2TextTask
{
    /// <summary><c>text2text-generation</c>: the output key is <c>generated_text</c>.</summary>
    Text2Text,

    /// <summary><c>translation</c>: the output key is <c>translation_text</c>.</summary>
    Translation,

    /// <summary><c>summarization</c>: the output key is <c>summary_text</c>.</summary>
    Summarization,
}

/// <summary>One output of a text-to-text pipeline.</summary>
/// <param name="Text">The generated text, special tokens removed.</param>
/// <param name="Tokens">The generated token ids (a final EOS included).</param>
/// <param name="Reason">Why generation stopped.</param>
/// <param name="Score">Beam search: the hypothesis score (sum log p / length^length_penalty); else null.</param>
/// <param name="SourceTokens">Tokens of the source as the encoder saw it (after the prefix and any truncation).</param>
/// <param name="Truncated">Whether the source was cut to the model's limit.</param>
public sealed record Text2TextResult(string Text, IReadOnlyList<int> Tokens, FinishReason Reason, double? Score, int SourceTokens, bool Truncated);

/// <summary>Where each output token looked in the source: one decoder layer's cross-attention, averaged over its heads.</summary>
/// <param name="SourceTokens">The source tokens as the encoder saw them (columns).</param>
/// <param name="TargetTokens">The output tokens (rows): row i is the decoder position that chose token i.</param>
/// <param name="Weights">[T, S] row-major; each row sums to 1 over the source.</param>
/// <param name="Layer">The decoder layer shown (0-based).</param>
/// <param name="Layers">The decoder's number of layers.</param>
/// <param name="Heads">The heads averaged.</param>
public sealed record CrossAttentionMap(IReadOnlyList<string> SourceTokens, IReadOnlyList<string> TargetTokens, float[] Weights, int Layer, int Layers, int Heads);

/// <summary>How a text-to-text pipeline prepares its inputs.</summary>
public sealed record Text2TextOptions
{
    /// <summary>Text put before every input (T5's task prefix, e.g. "translate English to German: "); empty for other models.</summary>
    public string Prefix { get; init; } = "";

    /// <summary>
    /// Cut a source longer than the model takes (the tokenizer's model_max_length, capped by the encoder's positions)
    /// to that limit and report it through <see cref="Warning"/>; when false such a source is an error that names the limit.
    /// </summary>
    public bool Truncation { get; init; } = true;

    /// <summary>Receives the truncation notes; null drops them.</summary>
    public Action<string>? Warning { get; init; }
}

/// <summary>
/// HF's <c>translation</c>, <c>summarization</c> and <c>text2text-generation</c> pipelines over any
/// <see cref="ISeq2SeqLM"/> and its tokenizer: texts in (batched, right-padded for the encoder), generated texts out,
/// with greedy, sampling or beam search from <see cref="GenerationOptions"/>, and streaming of the target text.
/// </summary>
public sealed class Text2TextGenerationPipeline
{
    /// <summary>The model HF's translation pipeline (English → German) uses here by default.</summary>
    public const string DefaultTranslationModel = "Helsinki-NLP/opus-mt-en-de";

    /// <summary>Language names (in English) → the ISO 639-1 codes of Helsinki-NLP's opus-mt model names.</summary>
    private static readonly Dictionary<string, string> OpusLanguages = new(StringComparer.OrdinalIgnoreCase)
    {
        ["English"] = "en",
        ["German"] = "de",
        ["French"] = "fr",
        ["Spanish"] = "es",
        ["Italian"] = "it",
        ["Dutch"] = "nl",
        ["Swedish"] = "sv",
        ["Danish"] = "da",
        ["Finnish"] = "fi",
        ["Russian"] = "ru",
        ["Chinese"] = "zh",
        ["Arabic"] = "ar",
        ["Czech"] = "cs",
        ["Ukrainian"] = "uk",
        ["Hungarian"] = "hu",
        ["Romanian"] = "ro",
        ["Greek"] = "el",
        ["Turkish"] = "tr",
    };

    /// <summary>
    /// The default translation model for a language pair, named as Helsinki-NLP names its opus-mt models
    /// (<c>Helsinki-NLP/opus-mt-{source}-{target}</c>; English → German is <see cref="DefaultTranslationModel"/>).
    /// </summary>
    /// <param name="sourceLanguage">The source language's English name (e.g. German).</param>
    /// <param name="targetLanguage">The target language's English name (e.g. English).</param>
    /// <returns>The Hub repo id.</returns>
    /// <exception cref="ArgumentException">A language is not one this table knows, or both are the same.</exception>
    public static string DefaultTranslationModelFor(string sourceLanguage, string targetLanguage)
    {
        ArgumentNullException.ThrowIfNull(sourceLanguage);
        ArgumentNullException.ThrowIfNull(targetLanguage);
        string known = string.Join(", ", OpusLanguages.Keys);
        if (!OpusLanguages.TryGetValue(sourceLanguage.Trim(), out var from) || !OpusLanguages.TryGetValue(targetLanguage.Trim(), out var to))
        {
            throw new ArgumentException($"no default translation model for {sourceLanguage} → {targetLanguage}: name the languages in English ({known}), or pass --model a translation model.");
        }

        if (from == to)
        {
            throw new ArgumentException($"the source and target language are both {sourceLanguage}; choose two different languages.");
        }

        return $"Helsinki-NLP/opus-mt-{from}-{to}";
    }

    /// <summary>The model HF's summarization pipeline loads when none is given.</summary>
    public const string DefaultSummarizationModel = "sshleifer/distilbart-cnn-12-6";

    private readonly Seq2SeqGenerator _generator;

    /// <summary>Pairs a model with its tokenizer.</summary>
    /// <param name="model">The encoder-decoder.</param>
    /// <param name="tokenizer">Its tokenizer (it adds the special tokens the model expects, e.g. a final EOS).</param>
    /// <param name="task">The task (names the result key; <see cref="TaskPrefix"/> gives T5's prefix for it).</param>
    /// <param name="options">Prefix and truncation; null = no prefix, truncate with no note.</param>
    public Text2TextGenerationPipeline(ISeq2SeqLM model, TextTokenizer tokenizer, Text2TextTask task = Text2TextTask.Text2Text, Text2TextOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _generator = new Seq2SeqGenerator(model);
        Tokenizer = tokenizer;
        Task = task;
        Options = options ?? new Text2TextOptions();
    }

    /// <summary>The model.</summary>
    public ISeq2SeqLM Model => _generator.Model;

    /// <summary>The tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The task.</summary>
    public Text2TextTask Task { get; }

    /// <summary>Prefix and truncation settings.</summary>
    public Text2TextOptions Options { get; }

    /// <summary>The key HF's pipeline puts the text under: <c>translation_text</c>, <c>summary_text</c> or <c>generated_text</c>.</summary>
    public string ResultKey => ResultKeyOf(Task);

    /// <summary>The most source tokens: the tokenizer's model_max_length, capped by the encoder's positions.</summary>
    public int MaxSourceTokens => Math.Min(Tokenizer.ModelMaxLength > 0 ? Tokenizer.ModelMaxLength : int.MaxValue, Model.MaxSourcePositions);

    /// <summary>The key HF uses for <paramref name="task"/>'s text.</summary>
    /// <param name="task">The task.</param>
    /// <returns>translation_text, summary_text or generated_text.</returns>
    public static string ResultKeyOf(Text2TextTask task) => task switch
    {
        Text2TextTask.Translation => "translation_text",
        Text2TextTask.Summarization => "summary_text",
        _ => "generated_text",
    };

    /// <summary>
    /// T5's task prefix (its config's <c>task_specific_params</c>): "summarize: " and "translate English to German: "
    /// (languages as given) for model_type t5; empty for models trained on plain input (Marian, BART, ours).
    /// </summary>
    /// <param name="modelType">config.json's model_type.</param>
    /// <param name="task">The task.</param>
    /// <param name="sourceLanguage">Translation source language, in English ("English").</param>
    /// <param name="targetLanguage">Translation target language ("German").</param>
    /// <returns>The prefix.</returns>
    public static string TaskPrefix(string? modelType, Text2TextTask task, string sourceLanguage = "English", string targetLanguage = "German")
    {
        if (modelType is not ("t5" or "mt5"))
        {
            return "";
        }

        return task switch
        {
            Text2TextTask.Summarization => "summarize: ",
            Text2TextTask.Translation => $"translate {sourceLanguage} to {targetLanguage}: ",
            _ => "",
        };
    }

    /// <summary>Generates the output of every input, the batch decoded together (beam search: one input after another).</summary>
    /// <param name="inputs">The source texts.</param>
    /// <param name="options">Generation settings; null = greedy with <see cref="GenerationOptions"/>' defaults.</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>For each input its NumReturnSequences results (best first for beam search).</returns>
    /// <exception cref="ArgumentException">An option is invalid, or a source is too long and truncation is off.</exception>
    public IReadOnlyList<IReadOnlyList<Text2TextResult>> Run(IReadOnlyList<string> inputs, GenerationOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        options ??= new GenerationOptions();
        var sources = inputs.Select(EncodeSource).ToList();
        var outputs = _generator.GenerateBatch([.. sources.Select(s => s.Ids)], options, null, ct);
        return [.. outputs.Select((sequences, i) => (IReadOnlyList<Text2TextResult>)[.. sequences.Select(s =>
            new Text2TextResult(Tokenizer.Decode(s.Tokens), s.Tokens, s.Reason, s.Score, sources[i].Ids.Count, sources[i].Truncated))])];
    }

    /// <summary>Generates one output and returns its text.</summary>
    /// <param name="input">The source text.</param>
    /// <param name="options">Generation settings; null = the defaults.</param>
    /// <param name="ct">Stops generation early.</param>
    /// <returns>The generated text.</returns>
    public string Run(string input, GenerationOptions? options = null, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        return Run([input], options, ct)[0][0].Text;
    }

    /// <summary>
    /// Streams the target text of one input as pieces, each yielded once it is complete UTF-8; concatenated they equal
    /// <see cref="Run(string, GenerationOptions?, CancellationToken)"/>'s text. Greedy or sampling only (beam search
    /// knows its output only at the end).
    /// </summary>
    /// <param name="input">The source text.</param>
    /// <param name="options">Generation settings (NumBeams 1); null = greedy.</param>
    /// <param name="ct">Cancels generation.</param>
    /// <returns>The text pieces.</returns>
    /// <exception cref="ArgumentException">NumBeams &gt; 1, an option is invalid, or the source is too long and truncation is off.</exception>
    public async IAsyncEnumerable<string> StreamAsync(string input, GenerationOptions? options = null, [EnumeratorCancellation] CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(input);
        options ??= new GenerationOptions();
        options.Validate();
        if (options.NumBeams > 1 || options.NumReturnSequences > 1)
        {
            throw new ArgumentException("Streaming needs NumBeams = 1 and NumReturnSequences = 1: beam search only knows its output at the end; call Run instead.", nameof(options));
        }

        var source = EncodeSource(input);
        var channel = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var text = new StreamingDetokenizer(Tokenizer);
        var work = System.Threading.Tasks.Task.Run(
            () =>
            {
                try
                {
                    _generator.GenerateBatch([source.Ids], options, (_, token) =>
                    {
                        string piece = text.Push(token);
                        if (piece.Length > 0)
                        {
                            channel.Writer.TryWrite(piece);
                        }
                    }, ct);
                    string rest = text.Flush();
                    if (rest.Length > 0)
                    {
                        channel.Writer.TryWrite(rest);
                    }

                    channel.Writer.Complete();
                }
                catch (Exception e)
                {
                    channel.Writer.Complete(e);
                }
            },
            ct);
        await foreach (var piece in channel.Reader.ReadAllAsync(ct).ConfigureAwait(false))
        {
            yield return piece;
        }

        await work.ConfigureAwait(false);
        ct.ThrowIfCancellationRequested();
    }

    /// <summary>
    /// Which source tokens each token of <paramref name="result"/> looked at: the cross-attention of decoder layer
    /// <paramref name="layer"/> (default the last), averaged over heads, from one teacher-forced pass over the output.
    /// </summary>
    /// <param name="input">The source text <paramref name="result"/> was generated from.</param>
    /// <param name="result">One of <see cref="Run(IReadOnlyList{string}, GenerationOptions?, CancellationToken)"/>'s results for it.</param>
    /// <param name="layer">The decoder layer, 0-based; null = the last.</param>
    /// <returns>The map, rows = output tokens, columns = source tokens.</returns>
    /// <exception cref="NotSupportedException">The model does not return cross-attention weights.</exception>
    /// <exception cref="ArgumentException">The result has no tokens, or the layer does not exist.</exception>
    public CrossAttentionMap CrossAttention(string input, Text2TextResult result, int? layer = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(result);
        if (Model is not ICrossAttentionSeq2SeqLM model)
        {
            throw new NotSupportedException($"{Model.GetType().Name} does not return cross-attention weights; the original Transformer (model_type sharpformer-transformer, e.g. sharpformer/transformer-de-en) does.");
        }

        if (result.Tokens.Count == 0)
        {
            throw new ArgumentException("The result has no output tokens, so there is no cross-attention to show.", nameof(result));
        }

        var source = EncodeSource(input).Ids.ToArray();
        var decoderInputs = new int[result.Tokens.Count];
        decoderInputs[0] = Model.SpecialTokens.DecoderStartTokenId;
        for (int i = 1; i < decoderInputs.Length; i++)
        {
            decoderInputs[i] = result.Tokens[i - 1];
        }

        var layers = model.CrossAttentionWeights(source, decoderInputs);
        int chosen = layer ?? layers.Count - 1;
        if (chosen < 0 || chosen >= layers.Count)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"The decoder has layers 0 to {layers.Count - 1}; layer {chosen} does not exist."), nameof(layer));
        }

        int heads = model.CrossAttentionHeads, t = decoderInputs.Length, s = source.Length;
        var weights = new float[t * s];
        var all = layers[chosen];
        for (int h = 0; h < heads; h++)
        {
            for (int i = 0; i < t * s; i++)
            {
                weights[i] += all[(h * t * s) + i] / heads;
            }
        }

        return new CrossAttentionMap(
            [.. source.Select(id => Tokenizer.Decode([id], skipSpecialTokens: false))],
            [.. result.Tokens.Select(id => Tokenizer.Decode([id], skipSpecialTokens: false))],
            weights, chosen, layers.Count, heads);
    }

    /// <summary>prefix + text → source ids, cut to <see cref="MaxSourceTokens"/> (with a note) or refused.</summary>
    private (IReadOnlyList<int> Ids, bool Truncated) EncodeSource(string input)
    {
        ArgumentNullException.ThrowIfNull(input);
        string text = Options.Prefix + input;
        int limit = MaxSourceTokens;
        var encoding = Tokenizer.Encode(text);
        if (encoding.Ids.Count == 0)
        {
            throw new ArgumentException("The input encodes to no tokens; give some text (the encoder needs at least one token).", nameof(input));
        }

        if (encoding.Ids.Count <= limit)
        {
            return (encoding.Ids, false);
        }

        if (!Options.Truncation)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"The input is {encoding.Ids.Count} tokens long but the model takes at most {limit}; shorten it, or allow truncation (Text2TextOptions.Truncation; the verbs truncate unless --no-truncate) to keep its first {limit} tokens."), nameof(input));
        }

        var cut = Tokenizer.Encode(text, null, new EncodeOptions { Truncation = true, MaxLength = limit });
        Options.Warning?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"an input of {encoding.Ids.Count:N0} tokens ({input.Length:N0} characters) was cut to the model's {limit} tokens."));
        return (cut.Ids, true);
    }
}

/// <summary>Reads a model folder's generation defaults (HF <c>generation_config.json</c>, else the same keys in config.json).</summary>
public static class GenerationConfigFile
{
    /// <summary>
    /// The folder's defaults on top of <paramref name="fallback"/>: <c>max_length</c> (minus the decoder start token
    /// for an encoder-decoder → MaxNewTokens), <c>min_length</c> (likewise → MinNewTokens), <c>num_beams</c>,
    /// <c>length_penalty</c>, <c>no_repeat_ngram_size</c>, <c>early_stopping</c>, <c>bad_words_ids</c>. Missing files or
    /// keys keep the fallback.
    /// </summary>
    /// <param name="folder">The model folder.</param>
    /// <param name="fallback">The options to start from.</param>
    /// <param name="encoderDecoder">Whether max_length and min_length count a decoder start token.</param>
    /// <returns>The options.</returns>
    /// <exception cref="InvalidDataException">The file is not valid JSON.</exception>
    public static GenerationOptions Load(string folder, GenerationOptions fallback, bool encoderDecoder = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ArgumentNullException.ThrowIfNull(fallback);
        string path = Path.Combine(folder, "generation_config.json");
        if (!File.Exists(path))
        {
            path = Path.Combine(folder, "config.json");
            if (!File.Exists(path))
            {
                return fallback;
            }
        }

        JsonElement root;
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path));
            root = document.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}).", e);
        }

        int start = encoderDecoder ? 1 : 0;
        var options = fallback;
        if (Int(root, "max_length") is { } maxLength && maxLength - start >= 1)
        {
            options = options with { MaxNewTokens = maxLength - start };
        }

        if (Int(root, "min_length") is { } minLength)
        {
            options = options with { MinNewTokens = Math.Clamp(minLength - start, 0, options.MaxNewTokens) };
        }

        if (Int(root, "num_beams") is { } beams && beams >= 1)
        {
            options = options with { NumBeams = beams };
        }

        if (root.TryGetProperty("length_penalty", out var penalty) && penalty.ValueKind == JsonValueKind.Number)
        {
            options = options with { LengthPenalty = penalty.GetSingle() };
        }

        if (Int(root, "no_repeat_ngram_size") is { } ngram && ngram >= 0)
        {
            options = options with { NoRepeatNgramSize = ngram };
        }

        if (root.TryGetProperty("early_stopping", out var early) && early.ValueKind is JsonValueKind.True or JsonValueKind.False)
        {
            options = options with { EarlyStopping = early.GetBoolean() };
        }

        if (root.TryGetProperty("bad_words_ids", out var bad) && bad.ValueKind == JsonValueKind.Array)
        {
            var words = new List<IReadOnlyList<int>>();
            foreach (var word in bad.EnumerateArray())
            {
                if (word.ValueKind != JsonValueKind.Array || word.GetArrayLength() == 0
                    || word.EnumerateArray().Any(t => t.ValueKind != JsonValueKind.Number || !t.TryGetInt32(out int id) || id < 0))
                {
                    throw new InvalidDataException($"{path}: bad_words_ids must be a list of non-empty lists of token ids, e.g. [[58100]].");
                }

                words.Add([.. word.EnumerateArray().Select(t => t.GetInt32())]);
            }

            options = options with { BadWordsIds = words };
        }

        return options;
    }

    private static int? Int(JsonElement root, string key) =>
        root.ValueKind == JsonValueKind.Object && root.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out int n) ? n : null;
}
