using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>What one teacher-forced encoder-decoder forward returns.</summary>
/// <param name="Logits">[B, T, V] logits of every target position.</param>
/// <param name="Loss">With labels: the mean cross-entropy over labels ≠ −100 (on the tape when recording); else null.</param>
/// <param name="EncoderLastHiddenState">[B, S, C], the encoder's output.</param>
public sealed record Seq2SeqLMOutput(Tensor Logits, Tensor? Loss, Tensor EncoderLastHiddenState);

/// <summary>
/// An encoder-decoder that also trains: the teacher-forced forward through the module path (autograd, dropout in
/// training mode) over the same parameters its <see cref="ISeq2SeqLM"/> generation uses.
/// </summary>
public interface ITrainableSeq2SeqLM : ISeq2SeqLM
{
    /// <summary>
    /// Source ids [B, S] and decoder input ids [B, T] → logits [B, T, V]; with labels [B, T] the mean cross-entropy over
    /// labels ≠ −100, as HF's <c>*ForConditionalGeneration</c> computes it (decoder inputs are the labels shifted right
    /// behind the decoder start token; the caller shifts).
    /// </summary>
    /// <param name="inputIds">[B, S] I32/I64 source ids.</param>
    /// <param name="attentionMask">[B, S] 1 = token, 0 = padding; or null.</param>
    /// <param name="decoderInputIds">[B, T] I32/I64 decoder inputs, starting with the decoder start token.</param>
    /// <param name="labels">[B, T] I32/I64 targets (−100 = not scored), or null.</param>
    /// <returns>Logits, the loss when labels were given, and the encoder output.</returns>
    Seq2SeqLMOutput Forward(Tensor inputIds, Tensor? attentionMask, Tensor decoderInputIds, Tensor? labels = null);

    /// <summary>Every trainable parameter with its checkpoint name (for optimizers and saving).</summary>
    /// <returns>The parameters, each once.</returns>
    IEnumerable<(string Name, Parameter Parameter)> NamedParameters();
}
