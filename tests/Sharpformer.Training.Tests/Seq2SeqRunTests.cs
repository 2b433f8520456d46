using Sharpformer.Models;
using Sharpformer.Models.Seq2Seq;
using Sharpformer.Text;
using Sharpformer.Training.Data;
using Sharpformer.Training.Optim;

namespace Sharpformer.Training.Tests;

/// <summary>
/// <c>train seq2seq</c>'s parts: parallel corpus reading, length-grouped batches (every pair once per epoch, the token
/// budget kept, teacher-forcing shift), the inverse-square-root schedule, and a tiny run that learns and resumes exactly.
/// </summary>
public class Seq2SeqRunTests
{
    private static readonly string TokenizerFolder = Path.Combine(AppContext.BaseDirectory, "fixtures", "byte_tokenizer");

    private static readonly Seq2SeqSpecialTokens Tokens = new(DecoderStartTokenId: 256, EosTokenId: 256, PadTokenId: 256);

    private static readonly TextPair[] Pairs =
    [
        new("Haus", "house"), new("das Haus", "the house"), new("Hund", "dog"), new("der Hund", "the dog"),
        new("Katze", "cat"), new("die Katze", "the cat"), new("Baum", "tree"), new("der große Baum", "the big tree"),
    ];

    private static string Temp(string name)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sf-s2s-{name}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }

    [Fact]
    public void ParallelCorpus_ReadsTsvAndJsonl_AndNamesBadLines()
    {
        string dir = Temp("corpus");
        File.WriteAllText(Path.Combine(dir, "a.tsv"), "Haus\thouse\n\nHund\tdog\n");
        File.WriteAllText(Path.Combine(dir, "a.jsonl"), "{\"source\": \"Haus\", \"target\": \"house\"}\n");
        File.WriteAllText(Path.Combine(dir, "bad.tsv"), "Haus\thouse\nonly one field\n");
        Assert.Equal([new TextPair("Haus", "house"), new TextPair("Hund", "dog")], ParallelCorpus.Read(Path.Combine(dir, "a.tsv")));
        Assert.Equal([new TextPair("Haus", "house")], ParallelCorpus.Read(Path.Combine(dir, "a.jsonl")));
        var e = Assert.Throws<InvalidDataException>(() => ParallelCorpus.Read(Path.Combine(dir, "bad.tsv")));
        Assert.Contains("bad.tsv:2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BatchSource_EveryPairOncePerEpoch_WithinTheTokenBudget_TeacherForced()
    {
        var tokenizer = AutoTokenizer.FromPretrained(TokenizerFolder);
        var source = new Seq2SeqBatchSource(Pairs, tokenizer, Tokens, maxLength: 32, maxTokens: 40, maxSentences: 3, seed: 1);
        var seen = new List<string>();
        for (long i = 0; i < source.BatchesPerEpoch; i++)
        {
            var batch = source.Next();
            int b = batch.SourceIds.Shape[0], s = batch.SourceIds.Shape[1], t = batch.Labels.Shape[1];
            Assert.True(b <= 3);
            Assert.True(b * Math.Max(s, t) <= 40, $"batch {i}: {b}×max({s}, {t}) tokens");
            var ids = batch.SourceIds.ToArray<int>();
            var mask = batch.SourceMask.ToArray();
            var decoder = batch.DecoderInputIds.ToArray<int>();
            var labels = batch.Labels.ToArray<int>();
            for (int r = 0; r < b; r++)
            {
                var real = Enumerable.Range(0, s).Where(j => mask[(r * s) + j] == 1f).Select(j => ids[(r * s) + j]).ToList();
                string text = tokenizer.Decode(real);
                seen.Add(text);
                var target = labels.Skip(r * t).Take(t).TakeWhile(l => l != -100).ToList();
                Assert.Equal(256, target[^1]); // EOS ends every target
                Assert.Equal(Pairs.Single(p => p.Source == text).Target, tokenizer.Decode(target));
                Assert.Equal(256, decoder[r * t]); // the decoder start token
                for (int j = 1; j < target.Count; j++)
                {
                    Assert.Equal(target[j - 1], decoder[(r * t) + j]);
                }
            }
        }

        Assert.Equal(Pairs.Select(p => p.Source).Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.Equal(new DataPosition(0, source.BatchesPerEpoch), source.Position);
    }

    [Fact]
    public void InverseSqrtSchedule_WarmsUpThenDecaysAsOneOverRootStep()
    {
        var schedule = new LearningRateSchedule(LearningRateSchedule.Parse("inverse_sqrt"), warmupSteps: 4);
        Assert.Equal(0.0, schedule.Multiplier(0));
        Assert.Equal(0.5, schedule.Multiplier(2));
        Assert.Equal(1.0, schedule.Multiplier(4));
        Assert.Equal(Math.Sqrt(4.0 / 16.0), schedule.Multiplier(16), 12);
        Assert.Equal(1.0 / Math.Sqrt(10_007.0 / 10_000.0), new LearningRateSchedule(LearningRateScheduleKind.InverseSqrt).Multiplier(7), 12);
    }

    private static Seq2SeqRunOptions Options(string data, string output, long steps, bool resume = false) => new()
    {
        TokenizerFolder = TokenizerFolder,
        Architecture = new TransformerConfig { VocabSize = 1, DModel = 16, EncoderLayers = 1, DecoderLayers = 1, NumAttentionHeads = 2, FfnDim = 32, MaxPositionEmbeddings = 32, Dropout = 0.1f },
        Data = data,
        EvalData = data,
        OutputFolder = output,
        MaxTokens = 64,
        MaxSentences = 4,
        Steps = steps,
        Resume = resume,
        Trainer = new TrainerOptions { MaxSteps = 1, LearningRate = 3e-3, LrSchedule = "inverse_sqrt", WarmupSteps = 3, Beta2 = 0.98, SaveEvery = 4, EvalEvery = 0, Seed = 7 },
    };

    [Fact]
    public void TinyRun_LossFalls_AndResumeEqualsOneRun()
    {
        string dir = Temp("run");
        string data = Path.Combine(dir, "train.tsv");
        File.WriteAllLines(data, Pairs.Select(p => $"{p.Source}\t{p.Target}"));

        var whole = Seq2SeqRun.Prepare(Options(data, Path.Combine(dir, "whole"), steps: 8));
        double before = whole.Trainer.Evaluate();
        var records = whole.Trainer.Run();
        double after = whole.Trainer.Evaluate();
        Assert.Equal(8, records.Count);
        Assert.True(after < before, $"held-out loss {before:F4} → {after:F4}");

        var first = Seq2SeqRun.Prepare(Options(data, Path.Combine(dir, "split"), steps: 4));
        first.Trainer.Run();
        var second = Seq2SeqRun.Prepare(Options(data, Path.Combine(dir, "split"), steps: 8, resume: true));
        Assert.Equal(4, second.Trainer.Step);
        second.Trainer.Run();
        foreach (var ((name, a), (_, b)) in whole.Model.NamedParameters().Zip(second.Model.NamedParameters()))
        {
            Assert.True(a.Value.ToArray().SequenceEqual(b.Value.ToArray()), $"{name} differs after resume");
        }

        // The final folder loads as an encoder-decoder with its tokenizer.
        var loaded = AutoModelForSeq2SeqLM.FromPretrained(Path.Combine(dir, "whole"));
        Assert.Equal(whole.Model.VocabSize, loaded.VocabSize);
        Assert.NotNull(AutoTokenizer.FromPretrained(Path.Combine(dir, "whole")));
    }

    [Fact]
    public void Prepare_WithoutTokenizerOrData_SaysWhichFlag()
    {
        var e = Assert.Throws<ArgumentException>(() => Seq2SeqRun.Prepare(new Seq2SeqRunOptions { Data = "x.tsv", OutputFolder = Temp("flags") }));
        Assert.Contains("--tokenizer", e.Message, StringComparison.Ordinal);
        var d = Assert.Throws<ArgumentException>(() => Seq2SeqRun.Prepare(new Seq2SeqRunOptions { OutputFolder = Temp("flags") }));
        Assert.Contains("--data", d.Message, StringComparison.Ordinal);
    }
}
