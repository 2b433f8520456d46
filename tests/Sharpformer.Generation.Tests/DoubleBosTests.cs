using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Generation.Tests;

/// <summary>
/// The double-BOS pitfall: a chat template renders "&lt;s&gt;[INST] …" and the Llama tokenizer's post-processor adds
/// &lt;s&gt; again; generation must see one BOS, as HF's chat pipeline (add_special_tokens=False) does. The tokenizer is
/// the Llama-2-style fixture (tests/fixtures/llama_tokenizer).
/// </summary>
public class DoubleBosTests
{
    private static TextTokenizer Tokenizer => AutoTokenizer.FromPretrained(Path.Combine(AppContext.BaseDirectory, "fixtures", "llama_tokenizer"));

    [Fact]
    public void PromptStartingWithBos_ModelSeesOneBos()
    {
        var tokenizer = Tokenizer;
        Assert.Equal([1, 1], tokenizer.Encode("<s>Hallo").Ids.Take(2));
        var model = new RecordingModel(tokenizer.VocabularySize);
        new TextGenerator(model).Generate(tokenizer, "<s>Hallo", new GenerationOptions { MaxNewTokens = 1 });
        Assert.Equal(1, model.Prompt[0]);
        Assert.NotEqual(1, model.Prompt[1]);
    }

    [Fact]
    public void PlainPrompt_KeepsTheTemplateBos()
    {
        var tokenizer = Tokenizer;
        var model = new RecordingModel(tokenizer.VocabularySize);
        new TextGenerator(model).Generate(tokenizer, "Hallo", new GenerationOptions { MaxNewTokens = 1 });
        Assert.Equal(tokenizer.Encode("Hallo").Ids, model.Prompt);
        Assert.Equal(1, model.Prompt[0]);
    }

    /// <summary>Records the prompt ids of its first call and always predicts token 5.</summary>
    private sealed class RecordingModel(int vocab) : ICausalLM
    {
        public int[] Prompt { get; private set; } = [];

        public int VocabSize => vocab;

        public int MaxPositions => 256;

        public KvCache CreateCache(int batch, int capacity) => new(1, batch, capacity, 1);

        public void ForwardLast(ReadOnlySpan<int> ids, ReadOnlySpan<float> attentionMask, KvCache cache, Span<float> lastLogits)
        {
            if (cache.Length == 0)
            {
                Prompt = ids.ToArray();
            }

            cache.Advance(attentionMask, ids.Length / cache.Batch, new int[ids.Length]);
            lastLogits.Clear();
            lastLogits[5] = 10f;
        }
    }
}
