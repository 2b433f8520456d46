using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>
/// A transformer encoder as pipelines use it: ids in, one hidden vector per token out. Implemented by the encoder models
/// themselves (BertModel, BertForMaskedLM, DistilBertModel, DistilBertForMaskedLM); calls run the fused inference path
/// and record no gradients.
/// </summary>
public interface ITextEncoder
{
    /// <summary>C, the width of each hidden vector.</summary>
    int HiddenSize { get; }

    /// <summary>The longest input (in tokens) the model's position table covers.</summary>
    int MaxPositions { get; }

    /// <summary>ids, attention mask (1 = token, 0 = padding) and token type ids, each [B, T] I32 → last_hidden_state [B, T, C].</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids (ignored by models without segments, such as DistilBERT).</param>
    /// <returns>The last hidden state [B, T, C].</returns>
    /// <exception cref="ArgumentException">The tensors are not [B, T] of one shape, T exceeds <see cref="MaxPositions"/>, or an id is outside the vocabulary.</exception>
    Tensor Encode(Tensor inputIds, Tensor attentionMask, Tensor tokenTypeIds);
}

/// <summary>An encoder with a masked-language-model head (BertForMaskedLM, DistilBertForMaskedLM).</summary>
public interface IMaskedLanguageModel : ITextEncoder
{
    /// <summary>V, the number of logits per token.</summary>
    int VocabSize { get; }

    /// <summary>Hidden states [N, C] → vocabulary logits [N, V] through the MLM head (only the rows that need them, e.g. the masked positions).</summary>
    /// <param name="hidden">[N, C] rows of a last hidden state.</param>
    /// <returns>[N, V] logits.</returns>
    /// <exception cref="ArgumentException"><paramref name="hidden"/> is not [N, C].</exception>
    Tensor PredictLogits(Tensor hidden);
}

/// <summary>
/// A language model a trainer can teach: the loss of a batch, computed as the Hugging Face class computes it when given
/// labels (causal LMs shift the labels by one inside; masked LMs score the labelled positions), recording gradients.
/// Implemented by GPT2LMHeadModel, BertForMaskedLM and DistilBertForMaskedLM.
/// </summary>
public interface ILanguageModel
{
    /// <summary>The mean cross-entropy of a batch: ids [B, T] I32, attention mask [B, T] (1 = token) or null, labels [B, T] I32 with −100 where nothing is scored.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding, or null for none.</param>
    /// <param name="labels">[B, T] targets (the input ids themselves for causal LM), −100 where not scored.</param>
    /// <returns>The scalar loss.</returns>
    Tensor LanguageModelingLoss(Tensor inputIds, Tensor? attentionMask, Tensor labels);
}

/// <summary>How a sequence classifier turns logits into scores and labels into a loss (config.json <c>problem_type</c>).</summary>
public enum ClassificationProblem
{
    /// <summary><c>single_label_classification</c>: softmax scores, cross-entropy against one class index per example.</summary>
    SingleLabel,

    /// <summary><c>multi_label_classification</c>: sigmoid scores, binary cross-entropy against a 0/1 vector per example.</summary>
    MultiLabel,

    /// <summary><c>regression</c>: raw scores, mean squared error against one (or num_labels) real values per example.</summary>
    Regression,
}

/// <summary>
/// What every fine-tunable task model (sequence classification, token classification, question answering) tells a
/// pipeline or a trainer about its inputs. Inputs are ids [B, T] I32, an attention mask [B, T] I32 (1 = token,
/// 0 = padding) and token type ids [B, T] I32 or null (models without segments ignore them).
/// </summary>
public interface ITaskModel
{
    /// <summary>The longest input (in tokens) the model's position table covers.</summary>
    int MaxPositions { get; }

    /// <summary>Whether the model reads token_type_ids (BERT: yes; DistilBERT and GPT-2: no, so text pairs carry no segment signal).</summary>
    bool UsesTokenTypes { get; }
}

/// <summary>A sequence classifier (BertForSequenceClassification, DistilBertForSequenceClassification, GPT2ForSequenceClassification).</summary>
public interface ISequenceClassifier : ITaskModel
{
    /// <summary>The labels in id order (config <c>id2label</c>; <c>LABEL_i</c> where absent), one per logit.</summary>
    IReadOnlyList<string> Labels { get; }

    /// <summary>How scores and the loss are computed (config <c>problem_type</c>, resolved as HF does when absent).</summary>
    ClassificationProblem Problem { get; }

    /// <summary>ids, mask, token types [B, T] → logits [B, L], L = <see cref="Labels"/>.Count; inference, no gradients.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <returns>[B, L] logits.</returns>
    Tensor ClassificationLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds);

    /// <summary>
    /// The loss HF's class returns when given <c>labels</c>, recording gradients: labels [B] I32 class ids
    /// (single-label), [B, L] F32 0/1 (multi-label), [B] or [B, L] F32 targets (regression).
    /// </summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding, or null.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <param name="labels">The targets, shaped by <see cref="Problem"/>.</param>
    /// <returns>The scalar loss.</returns>
    Tensor ClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels);
}

/// <summary>A token classifier (BertForTokenClassification, DistilBertForTokenClassification): one label per token, e.g. NER tags.</summary>
public interface ITokenClassifier : ITaskModel
{
    /// <summary>The labels in id order (config <c>id2label</c>; <c>LABEL_i</c> where absent), one per logit.</summary>
    IReadOnlyList<string> Labels { get; }

    /// <summary>ids, mask, token types [B, T] → logits [B, T, L]; inference, no gradients.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <returns>[B, T, L] logits.</returns>
    Tensor TokenLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds);

    /// <summary>The mean cross-entropy over labelled tokens (labels [B, T] I32, −100 = ignored), recording gradients.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding, or null.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <param name="labels">[B, T] class ids, −100 where not scored.</param>
    /// <returns>The scalar loss.</returns>
    Tensor TokenClassificationLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor labels);
}

/// <summary>Extractive question answering (BertForQuestionAnswering, DistilBertForQuestionAnswering): start and end logits per token.</summary>
public interface IQuestionAnswering : ITaskModel
{
    /// <summary>ids, mask, token types [B, T] → (start logits [B, T], end logits [B, T]); inference, no gradients.</summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <returns>The start and end logits, each [B, T].</returns>
    (Tensor Start, Tensor End) SpanLogits(Tensor inputIds, Tensor attentionMask, Tensor? tokenTypeIds);

    /// <summary>
    /// HF's QA loss, recording gradients: the mean of the start and end cross-entropies, positions [B] I32 (clamped to
    /// [0, T] and position T ignored, as HF does for answers truncated out of the window).
    /// </summary>
    /// <param name="inputIds">[B, T] token ids.</param>
    /// <param name="attentionMask">[B, T] 1 = token, 0 = padding, or null.</param>
    /// <param name="tokenTypeIds">[B, T] segment ids, or null.</param>
    /// <param name="startPositions">[B] token index of each answer's first token.</param>
    /// <param name="endPositions">[B] token index of each answer's last token.</param>
    /// <returns>The scalar loss.</returns>
    Tensor QuestionAnsweringLoss(Tensor inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor startPositions, Tensor endPositions);
}

/// <summary>Shared checks and plumbing of the task-interface implementations.</summary>
internal static class TaskInterfaces
{
    /// <summary>
    /// The masked-LM loss from the last hidden state [B, T, C] and labels [B, T] (−100 = not scored), with the head
    /// (<paramref name="head"/>: [1, N, C] → [1, N, V]) run on the N labelled rows only: the rows are gathered (their
    /// gradient scatters back), so the mean cross-entropy and every gradient equal the full-logits computation.
    /// </summary>
    public static Tensor SparseMaskedLoss(Tensor hidden, Tensor labels, Func<Tensor, Tensor> head)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(labels);
        int b = hidden.Shape[0], t = hidden.Shape[1], c = hidden.Shape[2];
        if (labels.Shape != new Shape(b, t) || labels.DType is not (DType.I32 or DType.I64))
        {
            throw new ArgumentException($"labels must be I32/I64 [B, T] = [{b}, {t}], input_ids' shape; got {labels.DType} {labels.Shape}.", nameof(labels));
        }

        var all = Bert.BertLoading.ReadIds(labels);
        var rows = new List<int>();
        var targets = new List<int>();
        for (int i = 0; i < all.Length; i++)
        {
            if (all[i] == -100) continue;
            rows.Add(i);
            targets.Add(all[i]);
        }

        if (rows.Count == 0)
        {
            // Nothing scored: PyTorch's mean over zero rows is NaN; keep that (the trainer reports it with the step).
            return Ops.CrossEntropy(head(hidden), labels);
        }

        var picked = Ops.Embedding(Tensor.FromArray(rows.ToArray(), new Shape(rows.Count)), Ops.Reshape(hidden, b * t, c));
        var logits = head(Ops.Reshape(picked, 1, rows.Count, c));
        return Ops.CrossEntropy(logits, Tensor.FromArray(targets.ToArray(), new Shape(1, rows.Count)));
    }

    /// <summary>Runs <paramref name="forward"/> without recording gradients and returns its [B, T, C] result.</summary>
    public static Tensor Encode(Func<Tensor> forward)
    {
        using var noGrad = Autograd.NoGrad();
        return forward();
    }

    /// <summary>[N, C] → [N, V] through <paramref name="head"/> (which maps [1, N, C] → [1, N, V]) without recording gradients.</summary>
    public static Tensor PredictLogits(Tensor hidden, int c, Func<Tensor, Tensor> head)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        if (hidden.Rank != 2 || hidden.Shape[1] != c || hidden.DType != DType.F32)
        {
            throw new ArgumentException($"PredictLogits: hidden must be F32 [N, C={c}], got {hidden.DType} {hidden.Shape}.", nameof(hidden));
        }

        using var noGrad = Autograd.NoGrad();
        int rows = hidden.Shape[0];
        var logits = head(hidden.Reshape(1, rows, c));
        return logits.Reshape(rows, logits.Shape[-1]);
    }
}
