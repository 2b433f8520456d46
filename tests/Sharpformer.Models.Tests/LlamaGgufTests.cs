using System.Text.Json;
using Sharpformer.IO.Gguf;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models.Llama;
using Sharpformer.Text;

namespace Sharpformer.Models.Tests;

/// <summary>
/// GGUF ↔ the Llama family: each PyTorch fixture model exported by <see cref="LlamaGguf.Export"/> (llama.cpp's names,
/// q/k rows permuted for the llama architecture, Llama 3 rope scaling as rope_freqs) and loaded back gives the
/// safetensors model's logits; the tokenizer of a GGUF SentencePiece vocabulary (pieces, scores, token types of the
/// fixture trained by python3-sentencepiece) encodes like the tokenizer.json made from the same model.
/// </summary>
public class LlamaGgufTests
{
    public static TheoryData<string> Cases => new() { "llama", "llama_bias", "mistral", "qwen2", "phi3" };

    private static string Folder(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", "llama", name);

    private static string TempFile(string name) => Path.Combine(Path.GetTempPath(), $"sharpformer-{name}-{Guid.NewGuid():N}.gguf");

    [Theory]
    [MemberData(nameof(Cases))]
    public void ExportThenLoad_F32_LogitsEqualSafetensors(string name)
    {
        var path = TempFile(name);
        try
        {
            LlamaGguf.Export(Folder(name), path);
            var reference = LlamaForCausalLM.FromPretrained(Folder(name));
            var loaded = LlamaForCausalLM.FromGguf(path);
            Assert.Empty(loaded.LoadReport!.Unused);
            Assert.Empty(loaded.LoadReport.Missing);
            Assert.Equal(reference.Config.NumKeyValueHeads, loaded.Config.NumKeyValueHeads);
            Assert.Equal(reference.Config.TieWordEmbeddings, loaded.Config.TieWordEmbeddings);
            Assert.Equal(reference.Config.SlidingWindow, loaded.Config.SlidingWindow);
            int[] prompt = [60, 12, 9, 88, 45, 3, 27, 50, 14, 77, 31];
            float diff = OnnxParityTests.MaxAbsDiff(reference.Forward(prompt, 1).Logits.ToArray(), loaded.Forward(prompt, 1).Logits.ToArray());
            Assert.True(diff <= 1e-5f, $"{name}: GGUF vs safetensors max |Δlogit| = {diff}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Export_LlamaArchitecture_PermutesQueryRowsAndF16RoundsNearby()
    {
        var path = TempFile("llama-f16");
        try
        {
            LlamaGguf.Export(Folder("llama"), path, GgufFileType.MostlyF16);
            var file = GgufFile.Open(path);
            Assert.Equal("llama", file.Get("general.architecture").AsString("general.architecture"));
            Assert.True(file.ContainsTensor("rope_freqs.weight"), "llama3 rope scaling is written as rope_freqs");
            Assert.Equal(GgufTensorType.F16, file.GetTensor("blk.0.attn_q.weight").Type);
            Assert.Equal(GgufTensorType.F32, file.GetTensor("blk.0.attn_norm.weight").Type);

            // Row 1 of head 0 in GGUF is HF row D/2 (the first value of the second half), D = 8.
            using var weights = SafeTensorsFile.Open(Path.Combine(Folder("llama"), "model.safetensors"));
            var hf = weights.GetTensorAsF32("model.layers.0.self_attn.q_proj.weight").ToArray();
            var gguf = file.ReadAsF32("blk.0.attn_q.weight");
            Assert.Equal((float)(Half)hf[4 * 32], gguf[1 * 32]);
            Assert.NotEqual(hf[1 * 32], gguf[1 * 32]);

            var f32 = LlamaForCausalLM.FromPretrained(Folder("llama"));
            var f16 = LlamaForCausalLM.FromGguf(path);
            int[] prompt = [5, 17, 42, 8, 33, 71, 2];
            float diff = OnnxParityTests.MaxAbsDiff(f32.Forward(prompt, 1).Logits.ToArray(), f16.Forward(prompt, 1).Logits.ToArray());
            Assert.True(diff > 0f && diff <= 0.05f, $"F16 GGUF vs F32 max |Δlogit| = {diff}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Tokenizer_SentencePieceVocabulary_EncodesLikeTokenizerJson()
    {
        var fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "llama_tokenizer");
        using var spm = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture, "spm_vocab.json")));
        var tokens = spm.RootElement.GetProperty("tokens").EnumerateArray().Select(t => t.GetString()!).ToArray();
        var scores = spm.RootElement.GetProperty("scores").EnumerateArray().Select(t => t.GetSingle()).ToArray();
        var types = spm.RootElement.GetProperty("types").EnumerateArray().Select(t => t.GetInt32()).ToArray();
        var path = TempFile("spm");
        try
        {
            var writer = new GgufWriter();
            writer.Add("general.architecture", GgufValue.FromString("llama"));
            writer.Add("llama.context_length", GgufValue.FromUInt32(2048));
            writer.Add("tokenizer.ggml.model", GgufValue.FromString("llama"));
            writer.Add("tokenizer.ggml.tokens", GgufValue.FromStrings(tokens));
            writer.Add("tokenizer.ggml.scores", GgufValue.FromFloat32s(scores));
            writer.Add("tokenizer.ggml.token_type", GgufValue.FromInt32s(types));
            writer.Add("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32(1));
            writer.Add("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32(2));
            writer.Add("tokenizer.ggml.unknown_token_id", GgufValue.FromUInt32(0));
            writer.Add("tokenizer.chat_template", GgufValue.FromString("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"));
            writer.WriteTo(path);

            var fromGguf = LlamaGguf.ReadTokenizer(GgufFile.Open(path))!;
            var fromJson = AutoTokenizer.FromPretrained(fixture);
            Assert.NotNull(fromGguf.ChatTemplate);
            Assert.Equal("<s>", fromGguf.SpecialTokens.Bos);
            string[] texts =
            [
                "Hallo Welt", "  zwei  Leerzeichen", "Grüße aus Köln!", "naïve café — 3.14 × 2", "emoji 🙂 und 中文",
                "Zeile eins\nZeile zwei\t(Tab)", "<s>special</s> tokens", "A- und B-Boden {m}; A- und B-Horizont",
            ];
            foreach (var text in texts)
            {
                Assert.Equal(fromJson.Encode(text).Ids, fromGguf.Encode(text).Ids);
                var ids = fromGguf.Encode(text).Ids;
                Assert.Equal(fromJson.Decode(ids), fromGguf.Decode(ids));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}
