using Sharpformer.Models;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Training.FineTuning;

/// <summary>Shared padding of encodings into [B, T] tensors (right padding, as HF's DataCollatorWithPadding).</summary>
internal static class BatchTensors
{
    public static int PadId(TextTokenizer tokenizer, int? padId) => padId ?? tokenizer.PadTokenId
        ?? throw new InvalidOperationException("The tokenizer has no pad token, so batches cannot be padded; set pad_token in tokenizer_config.json (GPT-2: use its eos token <|endoftext|>, as HF's examples do) or pass padId.");

    /// <summary>ids, mask and token types [B, T] with T the longest encoding; labels are laid out by the caller.</summary>
    public static (Tensor Ids, Tensor Mask, Tensor? TypeIds, int Length) Pad(IReadOnlyList<TokenEncoding> encodings, int padId, bool tokenTypes)
    {
        var b = encodings.Count;
        var t = encodings.Max(e => e.Count);
        var ids = new int[b * t];
        var mask = new int[b * t];
        var types = tokenTypes ? new int[b * t] : null;
        Array.Fill(ids, padId);
        for (var row = 0; row < b; row++)
        {
            var e = encodings[row];
            for (var i = 0; i < e.Count; i++)
            {
                ids[(row * t) + i] = e.Ids[i];
                mask[(row * t) + i] = e.AttentionMask[i];
                if (types is not null) types[(row * t) + i] = e.TypeIds[i];
            }
        }

        var shape = new Shape(b, t);
        return (Tensor.FromArray(ids, shape), Tensor.FromArray(mask, shape), types is null ? null : Tensor.FromArray(types, shape), t);
    }
}

/// <summary>
/// Builds sequence-classification batches: tokenizes text (and text_pair) with truncation to
/// <see cref="MaxLength"/> (longest_first, as HF's run_glue), pads to the longest in the batch, and lays out the labels
/// for the problem: [B] I32 class ids, [B, L] F32 0/1 (multi-label), [B] or [B, L] F32 (regression).
/// </summary>
public sealed class SequenceClassificationCollator
{
    private readonly TextTokenizer _tokenizer;
    private readonly int _padId;

    /// <summary>Prepares the collator.</summary>
    /// <param name="tokenizer">The model's tokenizer.</param>
    /// <param name="data">The data set (its examples are what <see cref="Collate(IReadOnlyList{int})"/> indexes).</param>
    /// <param name="maxLength">The truncation length (special tokens included), e.g. 128.</param>
    /// <param name="tokenTypes">Emit token_type_ids (the model's <see cref="ITaskModel.UsesTokenTypes"/>).</param>
    /// <param name="padId">The padding id; null uses the tokenizer's pad token.</param>
    public SequenceClassificationCollator(TextTokenizer tokenizer, ClassificationDataset data, int maxLength, bool tokenTypes, int? padId = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(data);
        if (maxLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max_length must be positive.");
        _tokenizer = tokenizer;
        Data = data;
        MaxLength = maxLength;
        TokenTypes = tokenTypes;
        _padId = BatchTensors.PadId(tokenizer, padId);
    }

    /// <summary>The data set.</summary>
    public ClassificationDataset Data { get; }

    /// <summary>The truncation length.</summary>
    public int MaxLength { get; }

    /// <summary>Whether batches carry token_type_ids.</summary>
    public bool TokenTypes { get; }

    /// <summary>The batch of the examples at <paramref name="indices"/> of <see cref="Data"/>.</summary>
    /// <param name="indices">Example indices.</param>
    /// <returns>The batch.</returns>
    public TaskBatch Collate(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        return Collate(indices.Select(i => Data.Examples[i]).ToList());
    }

    /// <summary>The batch of <paramref name="examples"/> (labels taken from <see cref="Data"/>'s label list).</summary>
    /// <param name="examples">The examples.</param>
    /// <returns>The batch.</returns>
    public TaskBatch Collate(IReadOnlyList<ClassificationExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("A batch needs at least one example.", nameof(examples));
        var options = new EncodeOptions { Truncation = true, MaxLength = MaxLength };
        var encodings = examples.Select(e => _tokenizer.Encode(e.Text, e.TextPair, options)).ToList();
        var (ids, mask, types, _) = BatchTensors.Pad(encodings, _padId, TokenTypes);
        return new TaskBatch(ids, mask, types, Labels(examples));
    }

    private Tensor Labels(IReadOnlyList<ClassificationExample> examples)
    {
        var b = examples.Count;
        var l = Data.LabelNames.Count;
        switch (Data.Problem)
        {
            case ClassificationProblem.SingleLabel:
                return Tensor.FromArray(examples.Select(e => Data.LabelId(e.Labels[0])).ToArray(), new Shape(b));
            case ClassificationProblem.MultiLabel:
                {
                    var values = new float[b * l];
                    for (var row = 0; row < b; row++)
                    {
                        foreach (var label in examples[row].Labels) values[(row * l) + Data.LabelId(label)] = 1f;
                    }

                    return Tensor.FromArray(values, new Shape(b, l));
                }

            default:
                {
                    var values = examples.SelectMany(e => e.Values ?? throw new ArgumentException($"Example at line {e.Line} has no regression target.")).ToArray();
                    return l == 1 ? Tensor.FromArray(values, new Shape(b)) : Tensor.FromArray(values, new Shape(b, l));
                }
        }
    }
}

/// <summary>
/// Builds token-classification batches from pre-split words as HF's run_ner does: the words are encoded with
/// <see cref="TextTokenizer.EncodeWords"/> (truncation to <see cref="MaxLength"/>), each word's first sub-token keeps
/// the word's tag and the other sub-tokens get −100 — or, with <see cref="LabelAllTokens"/>, the tag too, B-X turned
/// into I-X where the tag list has I-X — special tokens and padding get −100.
/// </summary>
public sealed class TokenClassificationCollator
{
    private readonly TextTokenizer _tokenizer;
    private readonly int _padId;
    private readonly int[] _bToI;

    /// <summary>Prepares the collator.</summary>
    /// <param name="tokenizer">The model's tokenizer (byte-level BPE needs add_prefix_space, as in HF).</param>
    /// <param name="data">The data set.</param>
    /// <param name="maxLength">The truncation length (special tokens included).</param>
    /// <param name="tokenTypes">Emit token_type_ids.</param>
    /// <param name="labelAllTokens">Label every sub-token, not only the first of each word (HF's <c>label_all_tokens</c>).</param>
    /// <param name="padId">The padding id; null uses the tokenizer's pad token.</param>
    public TokenClassificationCollator(TextTokenizer tokenizer, TokenClassificationDataset data, int maxLength, bool tokenTypes, bool labelAllTokens = false, int? padId = null)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(data);
        if (maxLength <= 0) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max_length must be positive.");
        _tokenizer = tokenizer;
        Data = data;
        MaxLength = maxLength;
        TokenTypes = tokenTypes;
        LabelAllTokens = labelAllTokens;
        _padId = BatchTensors.PadId(tokenizer, padId);
        _bToI = BeginToInside(data.LabelNames);
    }

    /// <summary>The data set.</summary>
    public TokenClassificationDataset Data { get; }

    /// <summary>The truncation length.</summary>
    public int MaxLength { get; }

    /// <summary>Whether batches carry token_type_ids.</summary>
    public bool TokenTypes { get; }

    /// <summary>Whether every sub-token is labelled.</summary>
    public bool LabelAllTokens { get; }

    /// <summary>
    /// HF's <c>b_to_i_label</c>: for each tag id, the id of its I- form when the tag is B-X and I-X is a tag, else itself.
    /// </summary>
    /// <param name="labels">The tags in id order.</param>
    /// <returns>The map.</returns>
    public static int[] BeginToInside(IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var map = new int[labels.Count];
        for (var i = 0; i < labels.Count; i++)
        {
            map[i] = i;
            if (labels[i].StartsWith("B-", StringComparison.Ordinal))
            {
                var inside = labels.ToList().IndexOf(labels[i].Replace("B-", "I-", StringComparison.Ordinal));
                if (inside >= 0) map[i] = inside;
            }
        }

        return map;
    }

    /// <summary>
    /// HF run_ner's <c>tokenize_and_align_labels</c> for one encoding: −100 where the word id is −1; the word's tag id
    /// at the first token of each word; at later tokens of the same word −100, or <paramref name="beginToInside"/>[tag]
    /// with <paramref name="labelAllTokens"/>.
    /// </summary>
    /// <param name="wordIds">The encoding's word ids (−1 for specials and padding).</param>
    /// <param name="wordLabels">The tag id of each word.</param>
    /// <param name="labelAllTokens">Label the later sub-tokens too.</param>
    /// <param name="beginToInside">The map from <see cref="BeginToInside"/>.</param>
    /// <returns>One label per token.</returns>
    public static int[] AlignLabels(IReadOnlyList<int> wordIds, IReadOnlyList<int> wordLabels, bool labelAllTokens, IReadOnlyList<int> beginToInside)
    {
        ArgumentNullException.ThrowIfNull(wordIds);
        ArgumentNullException.ThrowIfNull(wordLabels);
        ArgumentNullException.ThrowIfNull(beginToInside);
        var labels = new int[wordIds.Count];
        var previous = -1;
        for (var t = 0; t < wordIds.Count; t++)
        {
            var word = wordIds[t];
            if (word < 0)
            {
                labels[t] = -100;
            }
            else if (word != previous)
            {
                labels[t] = wordLabels[word];
            }
            else
            {
                labels[t] = labelAllTokens ? beginToInside[wordLabels[word]] : -100;
            }

            previous = word;
        }

        return labels;
    }

    /// <summary>The batch of the sentences at <paramref name="indices"/> of <see cref="Data"/>.</summary>
    /// <param name="indices">Sentence indices.</param>
    /// <returns>The batch; labels [B, T] I32.</returns>
    public TaskBatch Collate(IReadOnlyList<int> indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        return Collate(indices.Select(i => Data.Examples[i]).ToList());
    }

    /// <summary>The batch of <paramref name="examples"/>.</summary>
    /// <param name="examples">The sentences.</param>
    /// <returns>The batch; labels [B, T] I32.</returns>
    public TaskBatch Collate(IReadOnlyList<TokenTagExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        if (examples.Count == 0) throw new ArgumentException("A batch needs at least one sentence.", nameof(examples));
        var options = new EncodeOptions { Truncation = true, MaxLength = MaxLength };
        var encodings = examples.Select(e => _tokenizer.EncodeWords(e.Tokens, options: options)).ToList();
        var (ids, mask, types, t) = BatchTensors.Pad(encodings, _padId, TokenTypes);
        var labels = new int[examples.Count * t];
        Array.Fill(labels, -100);
        for (var row = 0; row < examples.Count; row++)
        {
            var wordLabels = examples[row].Tags.Select(Data.LabelId).ToArray();
            var aligned = AlignLabels(encodings[row].WordIds, wordLabels, LabelAllTokens, _bToI);
            aligned.CopyTo(labels, row * t);
        }

        return new TaskBatch(ids, mask, types, Tensor.FromArray(labels, new Shape(examples.Count, t)));
    }

    /// <summary>
    /// Word-level tag sequences for seqeval, as HF's run_ner <c>compute_metrics</c> makes them: per row, the predicted and
    /// true tags at the positions whose label is not −100.
    /// </summary>
    /// <param name="predictions">[B, T] predicted tag ids (argmax of the logits).</param>
    /// <param name="labels">[B, T] label ids with −100 where not scored.</param>
    /// <param name="tagNames">The tags in id order.</param>
    /// <returns>The predicted and the reference tag sequences.</returns>
    public static (List<List<string>> Predicted, List<List<string>> Reference) ScoredTags(int[,] predictions, int[,] labels, IReadOnlyList<string> tagNames)
    {
        ArgumentNullException.ThrowIfNull(predictions);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(tagNames);
        var predicted = new List<List<string>>();
        var reference = new List<List<string>>();
        for (var row = 0; row < labels.GetLength(0); row++)
        {
            var p = new List<string>();
            var r = new List<string>();
            for (var t = 0; t < labels.GetLength(1); t++)
            {
                if (labels[row, t] == -100) continue;
                p.Add(tagNames[predictions[row, t]]);
                r.Add(tagNames[labels[row, t]]);
            }

            predicted.Add(p);
            reference.Add(r);
        }

        return (predicted, reference);
    }
}
