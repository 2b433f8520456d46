using Sharpformer.Models.Seq2Seq;
using Sharpformer.Text;

namespace Sharpformer.Generation.Tests;

/// <summary>
/// The translation / summarization pipeline over a small random original Transformer and a byte-level tokenizer:
/// batching equals one-by-one, streaming equals the whole text, long sources are truncated with a note or refused,
/// T5 prefixes and HF result keys, generation defaults from generation_config.json.
/// </summary>
public class Text2TextPipelineTests
{
    private static readonly Lazy<(TransformerForConditionalGeneration Model, TextTokenizer Tokenizer)> Parts = new(() =>
    {
        string folder = Fixture.ByteTokenizerFolder(Path.Combine(AppContext.BaseDirectory, "t2t-" + Guid.NewGuid().ToString("N")));
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), """{"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "model_max_length": 24}""");
        var config = new TransformerConfig
        {
            VocabSize = 257,
            DModel = 16,
            EncoderLayers = 1,
            DecoderLayers = 2,
            NumAttentionHeads = 2,
            FfnDim = 32,
            MaxPositionEmbeddings = 40,
            PadTokenId = 256,
            BosTokenId = 256,
            EosTokenId = 256,
            DecoderStartTokenId = 256,
            InitStd = 0.3f,
        };
        var model = TransformerForConditionalGeneration.FromConfig(config, seed: 11);
        model.Eval();
        return (model, AutoTokenizer.FromPretrained(folder));
    });

    private static Text2TextGenerationPipeline Pipeline(Text2TextOptions? options = null) =>
        new(Parts.Value.Model, Parts.Value.Tokenizer, Text2TextTask.Translation, options);

    [Fact]
    public void Run_Batch_EqualsOneByOne_AndDecodesTheTokens()
    {
        var pipeline = Pipeline();
        string[] inputs = ["Guten Morgen", "Das Haus ist klein.", "ja"];
        var options = new GenerationOptions { MaxNewTokens = 12 };
        var batch = pipeline.Run(inputs, options);
        for (int i = 0; i < inputs.Length; i++)
        {
            var alone = pipeline.Run([inputs[i]], options)[0][0];
            Assert.Equal(alone.Tokens, batch[i][0].Tokens);
            Assert.Equal(pipeline.Tokenizer.Decode(alone.Tokens), batch[i][0].Text);
            Assert.False(batch[i][0].Truncated);
        }

        // Not a degenerate model that stops at once, and the sources steer the output.
        Assert.All(batch, r => Assert.True(r[0].Tokens.Count > 3));
        Assert.NotEqual(batch[0][0].Tokens, batch[1][0].Tokens);
        Assert.Equal("translation_text", pipeline.ResultKey);
    }

    [Fact]
    public async Task StreamAsync_PiecesConcatenated_EqualRun()
    {
        var pipeline = Pipeline();
        var options = new GenerationOptions { MaxNewTokens = 15, DoSample = true, Seed = 4, TopK = 0 };
        var pieces = new List<string>();
        await foreach (var piece in pipeline.StreamAsync("Wie geht es dir?", options))
        {
            pieces.Add(piece);
        }

        Assert.Equal(pipeline.Run("Wie geht es dir?", options), string.Concat(pieces));
        await Assert.ThrowsAsync<ArgumentException>(async () =>
        {
            await foreach (var _ in pipeline.StreamAsync("x", new GenerationOptions { NumBeams = 2 }))
            {
            }
        });
    }

    [Fact]
    public void LongSource_IsTruncatedWithANote_OrRefused()
    {
        var notes = new List<string>();
        var pipeline = Pipeline(new Text2TextOptions { Warning = notes.Add });
        string longText = string.Concat(Enumerable.Repeat("abcdefgh ", 6)); // 54 byte tokens > model_max_length 24
        var result = pipeline.Run([longText], new GenerationOptions { MaxNewTokens = 3 })[0][0];
        Assert.True(result.Truncated);
        Assert.Equal(24, result.SourceTokens);
        Assert.Contains(notes, n => n.Contains("24 tokens", StringComparison.Ordinal));

        var strict = Pipeline(new Text2TextOptions { Truncation = false });
        var error = Assert.Throws<ArgumentException>(() => strict.Run(longText));
        Assert.Contains("at most 24", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Prefix_IsPutBeforeEveryInput()
    {
        var options = new GenerationOptions { MaxNewTokens = 6 };
        var prefixed = Pipeline(new Text2TextOptions { Prefix = "summarize: " }).Run("Ein Text", options);
        Assert.Equal(Pipeline().Run("summarize: Ein Text", options), prefixed);
        Assert.Equal("translate English to German: ", Text2TextGenerationPipeline.TaskPrefix("t5", Text2TextTask.Translation));
        Assert.Equal("summarize: ", Text2TextGenerationPipeline.TaskPrefix("t5", Text2TextTask.Summarization));
        Assert.Equal("", Text2TextGenerationPipeline.TaskPrefix("marian", Text2TextTask.Translation));
        Assert.Equal("summary_text", Text2TextGenerationPipeline.ResultKeyOf(Text2TextTask.Summarization));
    }

    [Fact]
    public void GenerationConfigFile_ReadsHfDefaults_CountingTheDecoderStart()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "gencfg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "generation_config.json"),
            """{"max_length": 142, "min_length": 56, "num_beams": 4, "length_penalty": 2.0, "no_repeat_ngram_size": 3, "early_stopping": true}""");
        var options = GenerationConfigFile.Load(folder, new GenerationOptions());
        Assert.Equal(141, options.MaxNewTokens);
        Assert.Equal(55, options.MinNewTokens);
        Assert.Equal(4, options.NumBeams);
        Assert.Equal(2f, options.LengthPenalty);
        Assert.Equal(3, options.NoRepeatNgramSize);
        Assert.True(options.EarlyStopping);
        Assert.Equal(new GenerationOptions(), GenerationConfigFile.Load(Path.Combine(folder, "missing"), new GenerationOptions()));
    }

    [Fact]
    public void GenerationConfigFile_ReadsBadWordsIds_AsMarianConfigsHoldThem()
    {
        string folder = Path.Combine(AppContext.BaseDirectory, "gencfg-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "marian", "bad_words_ids": [[58100], [7, 8]]}""");
        var options = GenerationConfigFile.Load(folder, new GenerationOptions());
        Assert.Equal(2, options.BadWordsIds.Count);
        Assert.Equal([58100], options.BadWordsIds[0]);
        Assert.Equal([7, 8], options.BadWordsIds[1]);

        File.WriteAllText(Path.Combine(folder, "config.json"), """{"bad_words_ids": [58100]}""");
        var error = Assert.Throws<InvalidDataException>(() => GenerationConfigFile.Load(folder, new GenerationOptions()));
        Assert.Contains("bad_words_ids", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CrossAttention_IsTheHeadMeanOfTheDecodingPath_RowsPerOutputToken()
    {
        var pipeline = Pipeline();
        const string input = "Das Haus ist klein.";
        var result = pipeline.Run([input], new GenerationOptions { MaxNewTokens = 9 })[0][0];
        var map = pipeline.CrossAttention(input, result);
        var model = Parts.Value.Model;
        var source = pipeline.Tokenizer.Encode(input).Ids.ToArray();
        int t = result.Tokens.Count, s = source.Length, heads = model.Config.NumAttentionHeads;
        Assert.Equal(t, map.TargetTokens.Count);
        Assert.Equal(s, map.SourceTokens.Count);
        Assert.Equal(model.Config.DecoderLayers - 1, map.Layer);
        Assert.Equal(pipeline.Tokenizer.Decode(result.Tokens, skipSpecialTokens: false), string.Concat(map.TargetTokens));

        // The same weights from the incremental decoding kernel path: decoder start + output tokens but the last.
        int[] decoderInputs = [model.SpecialTokens.DecoderStartTokenId, .. result.Tokens.Take(t - 1)];
        model.OutputCrossAttentions = true;
        try
        {
            var state = model.Encode(source, [], 1, t);
            model.DecodeLast(decoderInputs, state, new float[model.VocabSize]);
            var last = model.LastCrossAttentions![^1].ToArray<float>();
            for (int i = 0; i < t; i++)
            {
                double sum = 0;
                for (int j = 0; j < s; j++)
                {
                    float mean = 0;
                    for (int h = 0; h < heads; h++)
                    {
                        mean += last[(((h * t) + i) * s) + j] / heads;
                    }

                    Assert.Equal(mean, map.Weights[(i * s) + j], Tolerances.SameModelPaths);
                    sum += map.Weights[(i * s) + j];
                }

                Assert.Equal(1.0, sum, 4);
            }
        }
        finally
        {
            model.OutputCrossAttentions = false;
        }

        Assert.Throws<ArgumentException>(() => pipeline.CrossAttention(input, result, layer: model.Config.DecoderLayers));
    }
}
