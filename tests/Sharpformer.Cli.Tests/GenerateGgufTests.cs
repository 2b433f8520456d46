using System.Text.Json;
using Sharpformer.Cli.Commands;
using Sharpformer.Generation;
using Sharpformer.IO.Gguf;
using Sharpformer.Models.Llama;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>generate --model file.gguf --stats</c>: the tiny PyTorch Llama (tests/fixtures/llama/llama) exported to GGUF with a
/// 96-token SentencePiece-style vocabulary added, generating the PyTorch greedy continuation of the fixture's first
/// prompt and reporting prefill and decode tokens/s.
/// </summary>
public class GenerateGgufTests
{
    internal static string Fixture => Path.Combine(GenerateCommandTests.RepoRoot(), "tests", "fixtures", "llama", "llama");

    /// <summary>The fixture model as GGUF, with a vocabulary of 96 pieces: &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;, "▁", then printable ASCII.</summary>
    internal static string MakeGguf(GgufFileType fileType = GgufFileType.AllF32)
    {
        var plain = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-{Guid.NewGuid():N}.gguf");
        LlamaGguf.Export(Fixture, plain, fileType);
        var file = GgufFile.Open(plain);
        var tokens = new List<string> { "<unk>", "<s>", "</s>", "▁" };
        for (int c = 33; tokens.Count < 96; c++)
        {
            tokens.Add(((char)c).ToString());
        }

        var writer = new GgufWriter();
        foreach (var (key, value) in file.MetadataInOrder)
        {
            if (key != GgufWriter.AlignmentKey && !key.StartsWith("tokenizer.", StringComparison.Ordinal))
            {
                writer.Add(key, value);
            }
        }

        writer.Add("tokenizer.ggml.model", GgufValue.FromString("llama"));
        writer.Add("tokenizer.ggml.tokens", GgufValue.FromStrings(tokens));
        writer.Add("tokenizer.ggml.scores", GgufValue.FromFloat32s(tokens.Select((_, i) => -(float)i).ToArray()));
        writer.Add("tokenizer.ggml.token_type", GgufValue.FromInt32s(tokens.Select((_, i) => i == 0 ? 2 : i < 3 ? 3 : 1).ToArray()));
        writer.Add("tokenizer.ggml.bos_token_id", GgufValue.FromUInt32(1));
        writer.Add("tokenizer.ggml.eos_token_id", GgufValue.FromUInt32(2));
        writer.Add("tokenizer.ggml.add_bos_token", GgufValue.FromBool(false));
        writer.Add("tokenizer.ggml.add_space_prefix", GgufValue.FromBool(false));
        foreach (var info in file.Tensors)
        {
            writer.AddTensor(info.Name, info.Type, info.Dims, file.ReadBytes(info));
        }

        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-{Guid.NewGuid():N}.gguf");
        writer.WriteTo(path);
        File.Delete(plain);
        return path;
    }

    [Fact]
    public async Task Generate_GgufFile_PyTorchGreedyAndStats()
    {
        var path = MakeGguf();
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Fixture, "expected.json")));
            var prompt = doc.RootElement.GetProperty("prompts")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var greedy = doc.RootElement.GetProperty("greedy")[0].EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var (_, tokenizer) = LlamaGguf.Load(path);
            // The fixture's prompt ids as text in this vocabulary: each id ≥ 4 is one ASCII char and id 2 is "</s>"
            // (an added special token), so the text tokenizes back to the same ids.
            string text = string.Concat(prompt.Select(id => tokenizer.IdToToken(id)));
            Assert.Equal(prompt, tokenizer.Encode(text).Ids);
            Assert.DoesNotContain(2, greedy);

            var output = new StringWriter();
            var error = new StringWriter();
            int exit = await GenerateCommand.RunAsync(text, path, new GenerationOptions { MaxNewTokens = greedy.Length }, output, error, CancellationToken.None, stats: true);
            Assert.True(exit == 0, error.ToString());
            Assert.Equal(text + tokenizer.Decode(greedy) + Environment.NewLine, output.ToString());
            Assert.Matches(@"prefill: 7 tokens in [\d.]+ ms \([\d.]+ tokens/s\); decode: \d+ tokens in [\d.]+ ms", error.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Generate_Gpt2GgufFile_LoadsItsTokenizerAndGivesTheFoldersGreedyText()
    {
        // The tiny PyTorch GPT-2 folder and its F32 GGUF export (which carries the byte-level vocabulary): generate
        // takes either, and the file must give the folder's greedy text.
        var path = Path.Combine(Path.GetTempPath(), $"sharpformer-cli-{Guid.NewGuid():N}.gguf");
        Gpt2GgufExporter.Export(GenerateCommandTests.ModelFolder.Value, path);
        try
        {
            var options = new GenerationOptions { MaxNewTokens = 12 };
            var (folderOut, folderErr) = (new StringWriter(), new StringWriter());
            Assert.Equal(0, await GenerateCommand.RunAsync("The cat ", GenerateCommandTests.ModelFolder.Value, options, folderOut, folderErr, CancellationToken.None));
            var (fileOut, fileErr) = (new StringWriter(), new StringWriter());
            int exit = await GenerateCommand.RunAsync("The cat ", path, options, fileOut, fileErr, CancellationToken.None);
            Assert.True(exit == 0, fileErr.ToString());
            Assert.Equal(folderOut.ToString(), fileOut.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public async Task Generate_QuantizedGgufFile_StreamsTheModelsOwnGreedyContinuation()
    {
        // The same model exported at Q8_0: generate runs it on the file's blocks (prefill, then the KV cache), and must
        // continue the prompt as a greedy loop of full forwards over the loaded model does.
        var path = MakeGguf(GgufFileType.MostlyQ8_0);
        try
        {
            var (model, tokenizer) = LlamaGguf.Load(path);
            Assert.NotNull(model.Model.Layers[0].SelfAttn.QProj!.QuantizedWeight);
            string text = "Hello!";
            var ids = tokenizer.Encode(text).Ids.ToList();
            var greedy = new List<int>();
            for (int step = 0; step < 6; step++)
            {
                var logits = model.Forward(ids.ToArray(), 1).Logits.ToArray()[^model.VocabSize..];
                int next = Array.IndexOf(logits, logits.Max());
                greedy.Add(next);
                ids.Add(next);
            }

            var output = new StringWriter();
            var error = new StringWriter();
            int exit = await GenerateCommand.RunAsync(text, path, new GenerationOptions { MaxNewTokens = greedy.Count }, output, error, CancellationToken.None);
            Assert.True(exit == 0, error.ToString());
            var produced = greedy.Contains(2) ? greedy[..greedy.IndexOf(2)] : greedy;
            Assert.True(produced.Count >= 2, $"the continuation should hold a few tokens before </s>: {string.Join(", ", greedy)}");
            Assert.Equal(text + tokenizer.Decode(produced) + Environment.NewLine, output.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }
}
