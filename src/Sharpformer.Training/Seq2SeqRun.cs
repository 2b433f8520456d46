using System.Text.Json;
using Sharpformer.Models;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Tensors;
using Sharpformer.Text;
using Sharpformer.Training.Checkpoints;
using Sharpformer.Training.Data;

namespace Sharpformer.Training;

/// <summary>One source–target pair of a parallel corpus.</summary>
/// <param name="Source">The source text.</param>
/// <param name="Target">The target text.</param>
public sealed record TextPair(string Source, string Target);

/// <summary>Reads parallel corpora: TSV (source TAB target per line) or JSONL (<c>{"source": …, "target": …}</c> per line).</summary>
public static class ParallelCorpus
{
    /// <summary>Reads every pair of <paramref name="path"/>; blank lines are skipped.</summary>
    /// <param name="path">A .tsv (or any text file with one tab per line) or .jsonl file.</param>
    /// <returns>The pairs, in file order.</returns>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A line is not a pair; the message names the file and line.</exception>
    public static IReadOnlyList<TextPair> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} does not exist; pass a TSV (source<TAB>target per line) or JSONL ({{\"source\": …, \"target\": …}} per line) file.", path);
        }

        bool json = path.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".json", StringComparison.OrdinalIgnoreCase);
        var pairs = new List<TextPair>();
        int number = 0;
        foreach (var line in File.ReadLines(path))
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            pairs.Add(json ? JsonPair(path, number, line) : TsvPair(path, number, line));
        }

        return pairs;
    }

    private static TextPair TsvPair(string path, int number, string line)
    {
        var fields = line.Split('\t');
        if (fields.Length != 2 || fields[0].Length == 0 || fields[1].Length == 0)
        {
            throw new InvalidDataException($"{path}:{number}: expected 'source<TAB>target' (two non-empty fields), got {fields.Length} field(s).");
        }

        return new TextPair(fields[0], fields[1]);
    }

    private static TextPair JsonPair(string path, int number, string line)
    {
        try
        {
            using var document = JsonDocument.Parse(line);
            var root = document.RootElement;
            if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("source", out var s) && s.ValueKind == JsonValueKind.String
                && root.TryGetProperty("target", out var t) && t.ValueKind == JsonValueKind.String)
            {
                return new TextPair(s.GetString()!, t.GetString()!);
            }
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{number}: not valid JSON ({e.Message}).", e);
        }

        throw new InvalidDataException($"{path}:{number}: expected an object with string fields \"source\" and \"target\".");
    }
}

/// <summary>
/// One encoder-decoder training batch: source ids [B, S] with their mask, decoder inputs [B, T] (the decoder start
/// token, then the target shifted right) and labels [B, T] (the target then EOS, −100 at padding).
/// </summary>
/// <param name="SourceIds">[B, S] I32, right-padded.</param>
/// <param name="SourceMask">[B, S] F32, 1 = token, 0 = padding.</param>
/// <param name="DecoderInputIds">[B, T] I32.</param>
/// <param name="Labels">[B, T] I32, −100 where nothing is scored.</param>
/// <param name="TokenCount">Real source plus target tokens.</param>
public sealed record Seq2SeqBatch(Tensor SourceIds, Tensor SourceMask, Tensor DecoderInputIds, Tensor Labels, long TokenCount) : ITrainerBatch;

/// <summary>
/// Batches of a tokenized parallel corpus grouped by length (fairseq/tensor2tensor style): pairs sorted by length with
/// a seeded tie-break are cut into batches of at most <c>maxTokens</c> padded tokens (and at most <c>maxSentences</c>
/// pairs), so little compute is spent on padding; the batch order is reshuffled each epoch from (seed, epoch), so a
/// position (epoch, batch) resumes exactly.
/// </summary>
public sealed class Seq2SeqBatchSource : IBatchSource<Seq2SeqBatch>
{
    private readonly List<(int[] Source, int[] Target)> _pairs;
    private readonly List<int[]> _batches;
    private readonly int _seed;
    private readonly bool _shuffle;
    private readonly int _decoderStart;
    private readonly int _pad;
    private int[] _order;
    private int _orderEpoch = -1;
    private DataPosition _position;

    /// <summary>Tokenizes and groups the pairs.</summary>
    /// <param name="pairs">The pairs.</param>
    /// <param name="tokenizer">The shared tokenizer.</param>
    /// <param name="tokens">The model's decoder start, EOS and pad ids.</param>
    /// <param name="maxLength">Sources and targets (EOS included) are cut to this many tokens.</param>
    /// <param name="maxTokens">Most padded tokens (B · max(S, T)) per batch.</param>
    /// <param name="maxSentences">Most pairs per batch.</param>
    /// <param name="seed">Seed of the tie-breaks and the per-epoch order.</param>
    /// <param name="shuffle">Reshuffle the batch order every epoch.</param>
    /// <exception cref="ArgumentException">No pairs, or a size is not positive.</exception>
    public Seq2SeqBatchSource(IReadOnlyList<TextPair> pairs, TextTokenizer tokenizer, Seq2SeqSpecialTokens tokens, int maxLength, int maxTokens, int maxSentences, int seed, bool shuffle = true)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(tokens);
        if (pairs.Count == 0)
        {
            throw new ArgumentException("train seq2seq: the corpus holds no pairs.", nameof(pairs));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(maxLength, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxSentences);
        if (maxTokens < maxLength)
        {
            throw new ArgumentException($"train seq2seq: --max-tokens {maxTokens} must be at least the longest sequence ({maxLength} tokens).", nameof(maxTokens));
        }

        _seed = seed;
        _shuffle = shuffle;
        _decoderStart = tokens.DecoderStartTokenId;
        _pad = tokens.PadTokenId;
        _pairs = new List<(int[], int[])>(pairs.Count);
        foreach (var pair in pairs)
        {
            var source = tokenizer.Encode(pair.Source).Ids.Take(maxLength).ToArray();
            var target = tokenizer.Encode(pair.Target, null, new EncodeOptions { AddSpecialTokens = false }).Ids.Take(maxLength - 1).Append(tokens.EosTokenId).ToArray();
            if (source.Length > 0)
            {
                _pairs.Add((source, target));
            }
        }

        // Sort by (target length, source length) with a seeded random tie-break, then fill batches greedily.
        var random = new Random(seed);
        var keys = _pairs.Select((p, i) => (p.Target.Length, p.Source.Length, Tie: random.Next(), Index: i)).ToList();
        keys.Sort((a, b) => a.Item1 != b.Item1 ? a.Item1.CompareTo(b.Item1) : a.Item2 != b.Item2 ? a.Item2.CompareTo(b.Item2) : a.Tie.CompareTo(b.Tie));
        _batches = [];
        var current = new List<int>();
        int longest = 0;
        foreach (var key in keys)
        {
            int length = Math.Max(key.Item1, key.Item2);
            int widest = Math.Max(longest, length);
            if (current.Count > 0 && (widest * (current.Count + 1) > maxTokens || current.Count >= maxSentences))
            {
                _batches.Add([.. current]);
                current.Clear();
                widest = length;
            }

            current.Add(key.Index);
            longest = widest;
        }

        _batches.Add([.. current]);
        _order = [.. Enumerable.Range(0, _batches.Count)];
    }

    /// <summary>Pairs kept (those whose source has at least one token).</summary>
    public int PairCount => _pairs.Count;

    /// <inheritdoc/>
    public long BatchesPerEpoch => _batches.Count;

    /// <inheritdoc/>
    public DataPosition Position
    {
        get => _position;
        set
        {
            if (value.Epoch < 0 || value.Batch < 0 || value.Batch > _batches.Count)
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, $"Seq2SeqBatchSource: position outside the {_batches.Count} batches of an epoch; resume with the same data and batching options.");
            }

            _position = value;
        }
    }

    /// <summary>Every batch once, in length order (held-out evaluation).</summary>
    /// <returns>The batches.</returns>
    public IEnumerable<Seq2SeqBatch> All()
    {
        foreach (var batch in _batches)
        {
            yield return Build(batch);
        }
    }

    /// <summary>The tokenized pairs (source ids, target ids with EOS), in corpus order.</summary>
    public IReadOnlyList<(int[] Source, int[] Target)> Pairs => _pairs;

    /// <inheritdoc/>
    public Seq2SeqBatch Next()
    {
        if (_position.Batch >= _batches.Count)
        {
            _position = new DataPosition(_position.Epoch + 1, 0);
        }

        if (_orderEpoch != _position.Epoch)
        {
            _order = [.. Enumerable.Range(0, _batches.Count)];
            if (_shuffle)
            {
                new Random(SeedMix.Derive(_seed, _position.Epoch, 0x5E02)).Shuffle(_order);
            }

            _orderEpoch = _position.Epoch;
        }

        var batch = Build(_batches[_order[_position.Batch]]);
        _position = new DataPosition(_position.Epoch, _position.Batch + 1);
        return batch;
    }

    private Seq2SeqBatch Build(int[] members)
    {
        int b = members.Length;
        int s = members.Max(i => _pairs[i].Source.Length);
        int t = members.Max(i => _pairs[i].Target.Length);
        var source = new int[b * s];
        var mask = new float[b * s];
        var decoder = new int[b * t];
        var labels = new int[b * t];
        long count = 0;
        for (int r = 0; r < b; r++)
        {
            var (src, tgt) = _pairs[members[r]];
            for (int i = 0; i < s; i++)
            {
                bool real = i < src.Length;
                source[(r * s) + i] = real ? src[i] : _pad;
                mask[(r * s) + i] = real ? 1f : 0f;
            }

            for (int i = 0; i < t; i++)
            {
                labels[(r * t) + i] = i < tgt.Length ? tgt[i] : -100;
                decoder[(r * t) + i] = i == 0 ? _decoderStart : i - 1 < tgt.Length ? tgt[i - 1] : _pad;
            }

            count += src.Length + tgt.Length;
        }

        return new Seq2SeqBatch(
            Tensor.FromArray(source, new Shape(b, s)), Tensor.FromArray(mask, new Shape(b, s)),
            Tensor.FromArray(decoder, new Shape(b, t)), Tensor.FromArray(labels, new Shape(b, t)), count);
    }
}

/// <summary>What <c>sharpformer train seq2seq</c> was asked to do.</summary>
public sealed record Seq2SeqRunOptions
{
    /// <summary>A model folder to continue training (config.json model_type sharpformer-transformer, model.safetensors, tokenizer files); null trains a fresh one.</summary>
    public string? ModelFolder { get; init; }

    /// <summary>The shared source/target tokenizer folder (required for a fresh model; the model folder's otherwise).</summary>
    public string? TokenizerFolder { get; init; }

    /// <summary>The architecture of a fresh model; vocab_size and the special ids are taken from the tokenizer.</summary>
    public TransformerConfig Architecture { get; init; } = new() { VocabSize = 1, DModel = 256, EncoderLayers = 3, DecoderLayers = 3, NumAttentionHeads = 4, FfnDim = 1024, MaxPositionEmbeddings = 128 };

    /// <summary>Training pairs (TSV or JSONL).</summary>
    public string Data { get; init; } = string.Empty;

    /// <summary>Held-out pairs for the loss and BLEU evaluations, or null.</summary>
    public string? EvalData { get; init; }

    /// <summary>Use only the first N held-out pairs (evaluation decodes every one of them).</summary>
    public int? EvalLimit { get; init; }

    /// <summary>Output folder.</summary>
    public string OutputFolder { get; init; } = string.Empty;

    /// <summary>Most padded tokens per batch.</summary>
    public int MaxTokens { get; init; } = 4096;

    /// <summary>Most pairs per batch.</summary>
    public int MaxSentences { get; init; } = 256;

    /// <summary>Sources and targets are cut to this many tokens (at most the model's positions).</summary>
    public int? MaxLength { get; init; }

    /// <summary>Label smoothing ε of the cross-entropy (the paper's 0.1).</summary>
    public float LabelSmoothing { get; init; } = 0.1f;

    /// <summary>Optimizer steps; null derives them from <see cref="Epochs"/>.</summary>
    public long? Steps { get; init; }

    /// <summary>Epochs when <see cref="Steps"/> is null.</summary>
    public double Epochs { get; init; } = 10;

    /// <summary>Take batches in length order instead of a seeded shuffle per epoch.</summary>
    public bool NoShuffle { get; init; }

    /// <summary>Continue from the newest checkpoint.</summary>
    public bool Resume { get; init; }

    /// <summary>Start over in a folder that holds an earlier run.</summary>
    public bool Overwrite { get; init; }

    /// <summary>The trainer's settings (MaxSteps is replaced by the derived step count).</summary>
    public TrainerOptions Trainer { get; init; } = new() { MaxSteps = 1, LrSchedule = "inverse_sqrt", WarmupSteps = 4000, LearningRate = 7e-4, Beta2 = 0.98, Epsilon = 1e-9 };
}

/// <summary>
/// A prepared encoder-decoder training run (the original Transformer on a parallel corpus) through the shared
/// <see cref="Trainer{TBatch}"/>: length-grouped batches, label-smoothed cross-entropy, the paper's warmup +
/// inverse-square-root schedule by default, checkpoints and exact resume, held-out loss; the caller adds metrics such
/// as BLEU through <see cref="Trainer{TBatch}.EvalMetrics"/> (decoding lives in Sharpformer.Generation).
/// </summary>
public sealed class Seq2SeqRun
{
    private Seq2SeqRun(Trainer<Seq2SeqBatch> trainer, TransformerForConditionalGeneration model, TextTokenizer tokenizer, Seq2SeqBatchSource train, Seq2SeqBatchSource? eval, IReadOnlyList<TextPair> evalPairs, string? resumedFrom)
    {
        Trainer = trainer;
        Model = model;
        Tokenizer = tokenizer;
        Train = train;
        Eval = eval;
        EvalPairs = evalPairs;
        ResumedFrom = resumedFrom;
    }

    /// <summary>The trainer (set Progress, Evaluated, EvalMetrics before Run).</summary>
    public Trainer<Seq2SeqBatch> Trainer { get; }

    /// <summary>The model being trained.</summary>
    public TransformerForConditionalGeneration Model { get; }

    /// <summary>The shared tokenizer.</summary>
    public TextTokenizer Tokenizer { get; }

    /// <summary>The training batches.</summary>
    public Seq2SeqBatchSource Train { get; }

    /// <summary>The held-out batches, or null.</summary>
    public Seq2SeqBatchSource? Eval { get; }

    /// <summary>The held-out pairs as text (for BLEU), empty without held-out data.</summary>
    public IReadOnlyList<TextPair> EvalPairs { get; }

    /// <summary>The checkpoint resumed from, or null.</summary>
    public string? ResumedFrom { get; }

    /// <summary>Validates the options, reads and batches the data, builds or loads the model and the trainer.</summary>
    /// <param name="options">The options.</param>
    /// <returns>The run, ready to <see cref="Trainer{TBatch}.Run"/>.</returns>
    /// <exception cref="ArgumentException">An option is missing or contradicts another; the message names the flag.</exception>
    public static Seq2SeqRun Prepare(Seq2SeqRunOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Data)) throw new ArgumentException("--data is required: a TSV (source<TAB>target) or JSONL ({\"source\", \"target\"}) file of training pairs.");
        if (string.IsNullOrWhiteSpace(options.OutputFolder)) throw new ArgumentException("--out is required: the folder the checkpoints, the log and the trained model go to.");
        if (options.ModelFolder is null && options.TokenizerFolder is null)
        {
            throw new ArgumentException("--tokenizer <folder> is required to train a fresh model (a shared source/target vocabulary: vocab.json + merges.txt, vocab.txt or tokenizer.json); or continue a model with --model <folder>.");
        }

        if (options.Resume && options.Overwrite) throw new ArgumentException("--resume and --overwrite contradict each other: continue the run, or start it over.");
        string output = Path.GetFullPath(options.OutputFolder);
        var store = new CheckpointStore(output, options.Trainer.KeepCheckpoints);
        var resume = options.Resume ? store.Latest() : null;
        if (options.Resume && resume is null)
        {
            throw new ArgumentException($"--resume: {output} holds no complete checkpoint-N folder; drop --resume to start a new run there.");
        }

        if (!options.Resume) RunFolder.Check(output, options.Overwrite, IsRunFile, "training");

        string tokenizerFolder = options.TokenizerFolder ?? options.ModelFolder!;
        var tokenizer = AutoTokenizer.FromPretrained(tokenizerFolder);
        TransformerForConditionalGeneration model;
        if (options.ModelFolder is not null)
        {
            model = TransformerForConditionalGeneration.FromPretrained(options.ModelFolder);
            model.Train();
            if (tokenizer.VocabularySize > model.VocabSize)
            {
                throw new ArgumentException($"the tokenizer in {tokenizerFolder} has {tokenizer.VocabularySize} tokens but the model's vocab_size is {model.VocabSize}; use the model's own tokenizer.");
            }
        }
        else
        {
            int eos = SpecialId(tokenizer, tokenizer.SpecialTokens.Eos, "eos_token", tokenizerFolder);
            int pad = tokenizer.PadTokenId ?? eos;
            int bos = tokenizer.SpecialTokens.Bos is { } b && tokenizer.TokenToId(b) is { } bosId ? bosId : eos;
            var config = options.Architecture with { VocabSize = tokenizer.VocabularySize, PadTokenId = pad, BosTokenId = bos, EosTokenId = eos, DecoderStartTokenId = bos };
            model = TransformerForConditionalGeneration.FromConfig(config.Validate(), options.Trainer.Seed);
        }

        int maxLength = options.MaxLength ?? model.Config.MaxPositionEmbeddings;
        if (maxLength > model.Config.MaxPositionEmbeddings)
        {
            throw new ArgumentException($"--max-length {maxLength} exceeds the model's {model.Config.MaxPositionEmbeddings} positions (max_position_embeddings).");
        }

        var train = new Seq2SeqBatchSource(ParallelCorpus.Read(options.Data), tokenizer, model.SpecialTokens, maxLength, options.MaxTokens, options.MaxSentences, options.Trainer.Seed, !options.NoShuffle);
        IReadOnlyList<TextPair> evalPairs = [];
        Seq2SeqBatchSource? eval = null;
        if (options.EvalData is not null)
        {
            evalPairs = ParallelCorpus.Read(options.EvalData);
            if (options.EvalLimit is int limit)
            {
                evalPairs = [.. evalPairs.Take(limit)];
            }

            eval = new Seq2SeqBatchSource(evalPairs, tokenizer, model.SpecialTokens, maxLength, options.MaxTokens, options.MaxSentences, options.Trainer.Seed, shuffle: false);
        }

        long steps = options.Steps ?? Math.Max(1, (long)Math.Ceiling(options.Epochs * train.BatchesPerEpoch / options.Trainer.GradientAccumulationSteps));
        var trainerOptions = options.Trainer with { MaxSteps = steps };
        if (options.Overwrite) RunFolder.Clear(output, IsRunFile);
        float smoothing = options.LabelSmoothing;
        var trainer = new Trainer<Seq2SeqBatch>(
            model,
            batch => model.Forward(batch.SourceIds, batch.SourceMask, batch.DecoderInputIds, batch.Labels, smoothing).Loss!,
            train,
            eval is null ? null : eval.All,
            trainerOptions,
            output,
            folder => Write(folder, model, tokenizerFolder))
        {
            PlotTitle = $"Transformer seq2seq, d_model {model.Config.DModel}, {model.Config.EncoderLayers}+{model.Config.DecoderLayers} layers, ≤ {options.MaxTokens} tokens/batch",
        };
        if (resume is { } checkpoint) trainer.Resume(checkpoint.Folder);
        return new Seq2SeqRun(trainer, model, tokenizer, train, eval, evalPairs, resume?.Folder);
    }

    /// <summary>The model folder: config.json, model.safetensors and the tokenizer files.</summary>
    private static void Write(string folder, TransformerForConditionalGeneration model, string tokenizerFolder)
    {
        model.SavePretrained(folder);
        foreach (var name in ModelFolder.TokenizerFiles)
        {
            string source = Path.Combine(tokenizerFolder, name);
            if (File.Exists(source)) File.Copy(source, Path.Combine(folder, name), overwrite: true);
        }
    }

    private static int SpecialId(TextTokenizer tokenizer, string? token, string key, string folder) =>
        token is not null && tokenizer.TokenToId(token) is { } id
            ? id
            : throw new ArgumentException($"the tokenizer in {folder} has no {key}; a translation model needs one to end its outputs (set it in tokenizer_config.json or special_tokens_map.json).");

    private static bool IsRunFile(string name) =>
        name.StartsWith("checkpoint-", StringComparison.Ordinal) || name.StartsWith(".tmp-", StringComparison.Ordinal)
        || name is "config.json" or "model.safetensors" or "train_log.jsonl" or "train_log.png" || ModelFolder.TokenizerFiles.Contains(name);
}
