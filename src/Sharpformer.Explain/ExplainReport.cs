using System.Text.Json.Serialization;

namespace Sharpformer.Explain;

/// <summary>Everything the explainer page shows, as the JSON embedded in it (camelCase; matrices as base64 float32).</summary>
/// <param name="Text">The input text.</param>
/// <param name="Model">What the model is.</param>
/// <param name="Tokens">The tokens in order.</param>
/// <param name="Embeddings">The raw token-embedding rows [T, C].</param>
/// <param name="Positions">The position encoding of positions 0 … T − 1.</param>
/// <param name="Attention">Per layer: one matrix [T, T] per head, then the head average.</param>
/// <param name="HiddenNorms">L + 1 rows of T L2 norms: the residual stream's size per layer and position.</param>
/// <param name="Lens">The logit lens.</param>
/// <param name="Output">The model's own output.</param>
/// <param name="Interactive">True when the page is served and can recompute a new sentence.</param>
public sealed record ExplainReport(
    string Text,
    ExplainModelInfo Model,
    IReadOnlyList<ExplainToken> Tokens,
    DisplayMatrix Embeddings,
    ExplainPositions Positions,
    IReadOnlyList<ExplainLayerAttention> Attention,
    IReadOnlyList<float[]> HiddenNorms,
    ExplainLens Lens,
    ExplainOutput Output,
    bool Interactive = false);

/// <summary>The model as the page names it.</summary>
/// <param name="Name">Where it came from (folder or repository id).</param>
/// <param name="ModelType">The config's model_type.</param>
/// <param name="Layers">L.</param>
/// <param name="Heads">H.</param>
/// <param name="HiddenSize">C.</param>
/// <param name="VocabSize">V.</param>
/// <param name="Causal">Whether attention is causal (decoders).</param>
/// <param name="PositionEncoding">"learned", "sinusoidal" or "rotary".</param>
/// <param name="OutputKind">"masked-lm", "causal-lm" or "embedding-projection".</param>
public sealed record ExplainModelInfo(string Name, string ModelType, int Layers, int Heads, int HiddenSize, int VocabSize, bool Causal, string PositionEncoding, string OutputKind);

/// <summary>One token.</summary>
/// <param name="Index">Its position.</param>
/// <param name="Id">Its vocabulary id.</param>
/// <param name="Token">The vocabulary string (with the tokenizer's markers: ##, Ġ).</param>
/// <param name="Text">The characters it covers in the input (the token string for special tokens).</param>
/// <param name="Start">First character offset in the input (0 for special tokens).</param>
/// <param name="End">One past the last character (0 for special tokens).</param>
/// <param name="Special">A special token ([CLS], [SEP], [MASK], &lt;|endoftext|&gt;).</param>
/// <param name="Subword">A continuation of the previous token's word (no space or punctuation between them).</param>
public sealed record ExplainToken(int Index, int Id, string Token, string Text, int Start, int End, bool Special, bool Subword);

/// <summary>
/// A matrix prepared for display: at most <see cref="ExplainOptions.MaxCells"/> (or MaxColumns) cells per side.
/// Row block i covers source rows RowStarts[i] … RowStarts[i + 1] − 1 (likewise columns). Values hold each block's
/// mean; when a block holds more than one element (Exact false), Min and Max hold its exact extremes.
/// </summary>
/// <param name="SourceRows">Rows of the full matrix.</param>
/// <param name="SourceCols">Columns of the full matrix.</param>
/// <param name="RowStarts">Block starts, plus SourceRows at the end.</param>
/// <param name="ColStarts">Block starts, plus SourceCols at the end.</param>
/// <param name="Values">Block means, row-major [blocks rows × blocks cols] (exact values when Exact).</param>
/// <param name="Min">Block minima, or null when Exact.</param>
/// <param name="Max">Block maxima, or null when Exact.</param>
public sealed record DisplayMatrix(int SourceRows, int SourceCols, int[] RowStarts, int[] ColStarts, float[] Values, float[]? Min, float[]? Max)
{
    /// <summary>Displayed rows.</summary>
    public int Rows => RowStarts.Length - 1;

    /// <summary>Displayed columns.</summary>
    public int Cols => ColStarts.Length - 1;

    /// <summary>True when every cell is one element of the source (no downsampling).</summary>
    public bool Exact => Min is null;
}

/// <summary>The position encoding.</summary>
/// <param name="Kind">"learned", "sinusoidal" or "rotary".</param>
/// <param name="Table">Learned/sinusoidal: the added table [T, C]. Rotary: cos of the angles [T, D/2].</param>
/// <param name="RotarySin">Rotary only: sin of the angles [T, D/2].</param>
/// <param name="RelativeSimilarity">
/// cos-similarity of each position's encoding with position 0's, T values (rotary: the mean over frequency pairs of
/// cos(angle(p) − angle(0)), which is what a query at 0 and a key at p see when their pairs are equal).
/// </param>
public sealed record ExplainPositions(string Kind, DisplayMatrix Table, DisplayMatrix? RotarySin, float[] RelativeSimilarity);

/// <summary>One layer's attention.</summary>
/// <param name="Heads">One [T, T] matrix per head (query rows, key columns).</param>
/// <param name="Average">The head average [T, T].</param>
public sealed record ExplainLayerAttention(IReadOnlyList<DisplayMatrix> Heads, DisplayMatrix Average);

/// <summary>A candidate token with its probability.</summary>
/// <param name="Id">Vocabulary id.</param>
/// <param name="Token">Decoded text.</param>
/// <param name="Probability">Softmax probability.</param>
public sealed record ExplainCandidate(int Id, string Token, float Probability);

/// <summary>The logit lens: the output head applied to every layer's hidden state.</summary>
/// <param name="Positions">The token positions it covers (all when T ≤ LensMaxPositions).</param>
/// <param name="Layers">[layer 0 … L][index into Positions] → the top candidates.</param>
/// <param name="Head">How the rows were read: "mlm-head", "ln_f+lm_head" or "word-embeddings".</param>
public sealed record ExplainLens(int[] Positions, IReadOnlyList<IReadOnlyList<IReadOnlyList<ExplainCandidate>>> Layers, string Head);

/// <summary>The model's own output.</summary>
/// <param name="Kind">"masked-lm", "causal-lm" or "embedding-projection".</param>
/// <param name="Masks">Masked/projection kinds: the top candidates at each [MASK] (empty when the text has none).</param>
/// <param name="Next">Causal kind: the next-token distribution after the last token.</param>
public sealed record ExplainOutput(string Kind, IReadOnlyList<ExplainMaskPrediction> Masks, ExplainNextToken? Next);

/// <summary>The top candidates for one [MASK].</summary>
/// <param name="Position">The [MASK] token's index.</param>
/// <param name="Candidates">Best first.</param>
public sealed record ExplainMaskPrediction(int Position, IReadOnlyList<ExplainCandidate> Candidates);

/// <summary>The next-token distribution, raw and after the generation processors.</summary>
/// <param name="Raw">softmax(logits), best first.</param>
/// <param name="Processed">softmax after temperature, top-k and top-p as generation applies them, best first (tokens filtered out have probability 0 and are not listed).</param>
/// <param name="Temperature">The temperature applied.</param>
/// <param name="TopK">The top-k applied (0 = off).</param>
/// <param name="TopP">The top-p applied.</param>
/// <param name="Kept">How many tokens keep a non-zero probability after the processors.</param>
public sealed record ExplainNextToken(IReadOnlyList<ExplainCandidate> Raw, IReadOnlyList<ExplainCandidate> Processed, float Temperature, int TopK, float TopP, int Kept);

/// <summary>How the report is written as JSON: camelCase, float arrays as base64 little-endian float32.</summary>
public static class ExplainJson
{
    /// <summary>The serializer options the page and the tests use.</summary>
    public static System.Text.Json.JsonSerializerOptions Options { get; } = Create();

    private static System.Text.Json.JsonSerializerOptions Create()
    {
        var options = new System.Text.Json.JsonSerializerOptions
        {
            PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.CamelCase,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        };
        options.Converters.Add(new Float32Base64Converter());
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }
}

/// <summary>float[] ↔ base64 of its little-endian float32 bytes: exact values at a third of the size of decimal text.</summary>
internal sealed class Float32Base64Converter : JsonConverter<float[]>
{
    public override float[] Read(ref System.Text.Json.Utf8JsonReader reader, Type typeToConvert, System.Text.Json.JsonSerializerOptions options)
    {
        var bytes = reader.GetBytesFromBase64();
        if (bytes.Length % 4 != 0)
        {
            throw new System.Text.Json.JsonException($"A float32 array's base64 holds {bytes.Length} bytes, not a multiple of 4.");
        }

        var values = new float[bytes.Length / 4];
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(i * 4, 4));
        }

        return values;
    }

    public override void Write(System.Text.Json.Utf8JsonWriter writer, float[] value, System.Text.Json.JsonSerializerOptions options)
    {
        var bytes = new byte[value.Length * 4];
        for (int i = 0; i < value.Length; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(i * 4, 4), value[i]);
        }

        writer.WriteBase64StringValue(bytes);
    }
}
