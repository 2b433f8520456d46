using Sharpformer.Text;

namespace Sharpformer.Pipelines.Tests;

/// <summary>
/// HF's token-classification rules on hand-built cases: a fake model gives each token id chosen logits over a real
/// (small, uncased) WordPiece tokenizer; expected probabilities come from a double-precision softmax.
/// </summary>
public class TokenClassificationPipelineTests
{
    private static readonly string[] Vocab =
    [
        "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "my", "name", "is", "wolf", "##gang", "and", "i", "live", "in",
        "berlin", "micro", "##soft", "com", "##pany", "new", "york", ".", "##n",
    ];

    private static readonly string[] Conll = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"];
    private static readonly string[] Docstring = ["O", "B-ENT", "I-ENT", "B-NAME", "I-NAME"];
    private static readonly Lazy<TextTokenizer> Tokenizer = new(() => TestTokenizers.Load(Vocab, modelMaxLength: 64));

    // "My name is Wolfgang and I live in Berlin" → [CLS] my name is wolf ##gang and i live in berlin [SEP].
    private const string Wolfgang = "My name is Wolfgang and I live in Berlin";

    private static int Id(string token) => Array.IndexOf(Vocab, token);

    private static float[] Row(string[] labels, params (string Label, float Value)[] values)
    {
        var row = new float[labels.Length];
        foreach (var (label, value) in values)
        {
            row[Array.IndexOf(labels, label)] = value;
        }

        return row;
    }

    private static double[] Probabilities(float[] row) => Reference.Softmax(row.Select(v => (double)v).ToArray());

    private static (TokenClassificationPipeline Pipeline, FakeTokenClassifier Model) Build(string[] labels, List<string>? warnings = null)
    {
        var model = new FakeTokenClassifier(labels);
        return (new TokenClassificationPipeline(Tokenizer.Value, model, new PipelineOptions { Warning = warnings is null ? null : warnings.Add }), model);
    }

    private static FakeTokenClassifier WolfgangLogits(FakeTokenClassifier model)
    {
        model.LogitsById[Id("wolf")] = Row(Conll, ("B-PER", 4f));
        model.LogitsById[Id("##gang")] = Row(Conll, ("I-PER", 3f));
        model.LogitsById[Id("berlin")] = Row(Conll, ("B-LOC", 5f));
        return model;
    }

    [Fact]
    public void None_OneResultPerTokenNotLabelledO_WithIndexTokenAndCharSpan()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);

        var results = pipeline.Run(Wolfgang);

        Assert.Equal(
            [("B-PER", 4, "wolf", 11, 15), ("I-PER", 5, "##gang", 15, 19), ("B-LOC", 10, "berlin", 34, 40)],
            results.Select(r => (r.Entity, r.Index!.Value, r.Word, r.Start, r.End)));
        Assert.Equal(Probabilities(model.LogitsById[Id("wolf")])[1], results[0].Score, Tolerances.Rounding);
        Assert.Equal(Probabilities(model.LogitsById[Id("berlin")])[5], results[2].Score, Tolerances.Rounding);
    }

    [Fact]
    public void None_EmptyIgnoreLabels_KeepsOTokens_SpecialTokensNeverAppear()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);

        var results = pipeline.Run(Wolfgang, ignoreLabels: []);

        Assert.Equal(Enumerable.Range(1, 10), results.Select(r => r.Index!.Value));
        Assert.Equal(1.0 / Conll.Length, results[0].Score, Tolerances.Rounding);
        Assert.Equal("O", results[0].Entity);
    }

    [Fact]
    public void Simple_AdjacentSameTagGrouped_WordDecoded_ScoreIsTheMean()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);

        var results = pipeline.Run(Wolfgang, AggregationStrategy.Simple);

        Assert.Equal([("PER", "wolfgang", 11, 19), ("LOC", "berlin", 34, 40)], results.Select(r => (r.Entity, r.Word, r.Start, r.End)));
        Assert.All(results, r => Assert.Null(r.Index));
        var wolf = Probabilities(model.LogitsById[Id("wolf")])[1];
        var gang = Probabilities(model.LogitsById[Id("##gang")])[2];
        Assert.Equal((wolf + gang) / 2, results[0].Score, Tolerances.Rounding);
    }

    [Fact]
    public void Simple_TwoBTagsInARow_TwoGroups_IThenBToo()
    {
        var (pipeline, model) = Build(Conll);
        model.LogitsById[Id("new")] = Row(Conll, ("B-LOC", 4f));
        model.LogitsById[Id("york")] = Row(Conll, ("B-LOC", 4f));
        model.LogitsById[Id("berlin")] = Row(Conll, ("I-LOC", 4f));

        var results = pipeline.Run("New York Berlin", AggregationStrategy.Simple);

        // york is B- so it starts anew; berlin is I-LOC after LOC, so it joins york.
        Assert.Equal([("LOC", "new", 0, 3), ("LOC", "york berlin", 4, 15)], results.Select(r => (r.Entity, r.Word, r.Start, r.End)));
    }

    [Fact]
    public void Simple_TheHfDocstringCase_SplitsAWordBetweenTags()
    {
        // HF's docstring: micro|soft| com|pany| tagged B-ENT I-NAME I-ENT I-ENT.
        var (pipeline, model) = Build(Docstring);
        SetMicrosoftCompany(model);

        var results = pipeline.Run("Microsoft company", AggregationStrategy.Simple);

        // A lone "##soft" is decoded as HF's decoder does for a first token: prefix kept.
        Assert.Equal([("ENT", "micro", 0, 5), ("NAME", "##soft", 5, 9), ("ENT", "company", 10, 17)], results.Select(r => (r.Entity, r.Word, r.Start, r.End)));
    }

    [Fact]
    public void First_TheHfDocstringCase_WordsTakeTheirFirstTokensLabel()
    {
        // "will be rewritten with first strategy as microsoft| company| B-ENT I-ENT" — then grouped into one ENT.
        var (pipeline, model) = Build(Docstring);
        SetMicrosoftCompany(model);

        var result = Assert.Single(pipeline.Run("Microsoft company", AggregationStrategy.First));

        Assert.Equal(("ENT", "microsoft company", 0, 17), (result.Entity, result.Word, result.Start, result.End));
        var micro = Probabilities(model.LogitsById[Id("micro")])[1];
        var com = Probabilities(model.LogitsById[Id("com")])[2];
        Assert.Equal((micro + com) / 2, result.Score, Tolerances.Rounding);
    }

    private static void SetMicrosoftCompany(FakeTokenClassifier model)
    {
        model.LogitsById[Id("micro")] = Row(Docstring, ("B-ENT", 3f));
        model.LogitsById[Id("##soft")] = Row(Docstring, ("I-NAME", 3f));
        model.LogitsById[Id("com")] = Row(Docstring, ("I-ENT", 3f));
        model.LogitsById[Id("##pany")] = Row(Docstring, ("I-ENT", 3f));
    }

    // micro: sure-ish of B-ENT (≈0.67) with I-NAME second (≈0.33); ##soft: I-NAME (≈0.50) with the rest on O and I-ENT.
    // first → B-ENT; max → micro's row (0.67 > 0.50) → B-ENT; average → I-NAME ((0.33 + 0.50) / 2 > (0.67 + 0.00) / 2).
    private static (TokenClassificationPipeline Pipeline, FakeTokenClassifier Model) MicrosoftDisagreement()
    {
        var (pipeline, model) = Build(Docstring);
        model.LogitsById[Id("micro")] = Row(Docstring, ("O", -5f), ("B-ENT", 2f), ("I-ENT", -5f), ("B-NAME", -5f), ("I-NAME", 1.3f));
        model.LogitsById[Id("##soft")] = Row(Docstring, ("O", 1.5f), ("B-ENT", -5f), ("I-ENT", 1.5f), ("B-NAME", -5f), ("I-NAME", 2.2f));
        return (pipeline, model);
    }

    [Fact]
    public void FirstMaxAverage_DisagreeingTokensOfOneWord_EachAsHfDefinesIt()
    {
        var (pipeline, model) = MicrosoftDisagreement();
        var micro = Probabilities(model.LogitsById[Id("micro")]);
        var soft = Probabilities(model.LogitsById[Id("##soft")]);

        var first = Assert.Single(pipeline.Run("Microsoft", AggregationStrategy.First));
        var max = Assert.Single(pipeline.Run("Microsoft", AggregationStrategy.Max));
        var average = Assert.Single(pipeline.Run("Microsoft", AggregationStrategy.Average));

        Assert.Equal(("ENT", "microsoft", 0, 9), (first.Entity, first.Word, first.Start, first.End));
        Assert.Equal(micro[1], first.Score, Tolerances.Rounding);
        Assert.Equal(("ENT", "microsoft"), (max.Entity, max.Word));
        Assert.Equal(micro[1], max.Score, Tolerances.Rounding);
        Assert.Equal(("NAME", "microsoft", 0, 9), (average.Entity, average.Word, average.Start, average.End));
        Assert.Equal((micro[4] + soft[4]) / 2, average.Score, Tolerances.Rounding);
    }

    [Fact]
    public void Max_TheMorePeakedSubwordWins()
    {
        var (pipeline, model) = Build(Docstring);
        model.LogitsById[Id("micro")] = Row(Docstring, ("B-ENT", 2f));
        model.LogitsById[Id("##soft")] = Row(Docstring, ("I-NAME", 6f));

        var first = Assert.Single(pipeline.Run("Microsoft", AggregationStrategy.First));
        var max = Assert.Single(pipeline.Run("Microsoft", AggregationStrategy.Max));

        Assert.Equal("ENT", first.Entity);
        Assert.Equal("NAME", max.Entity);
        Assert.Equal(Probabilities(model.LogitsById[Id("##soft")])[4], max.Score, Tolerances.Rounding);
    }

    [Fact]
    public void WordAggregation_OTokensGroupedThenIgnored()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);

        var results = pipeline.Run(Wolfgang, AggregationStrategy.Average);
        var withO = pipeline.Run(Wolfgang, AggregationStrategy.Average, ignoreLabels: []);

        Assert.Equal([("PER", "wolfgang", 11, 19), ("LOC", "berlin", 34, 40)], results.Select(r => (r.Entity, r.Word, r.Start, r.End)));
        Assert.Equal(
            [("O", "my name is", 0, 10), ("PER", "wolfgang", 11, 19), ("O", "and i live in", 20, 33), ("LOC", "berlin", 34, 40)],
            withO.Select(r => (r.Entity, r.Word, r.Start, r.End)));
    }

    [Fact]
    public void UnknownWord_TakesItsTextAsWord_AndStartsAWord()
    {
        var (pipeline, model) = Build(Conll);
        model.LogitsById[Id("[UNK]")] = Row(Conll, ("I-LOC", 4f));
        model.LogitsById[Id("berlin")] = Row(Conll, ("B-LOC", 4f));

        var none = pipeline.Run("Berlin Xanadu");
        var first = pipeline.Run("Berlin Xanadu", AggregationStrategy.First);

        Assert.Equal([("B-LOC", "berlin"), ("I-LOC", "Xanadu")], none.Select(r => (r.Entity, r.Word)));
        Assert.Equal([("LOC", "berlin Xanadu", 0, 13)], first.Select(r => (r.Entity, r.Word, r.Start, r.End)));
    }

    [Fact]
    public void Batch_SameResultsAsOneByOne()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);

        var batch = pipeline.RunBatch(["Berlin", Wolfgang], AggregationStrategy.Simple);

        Assert.Single(model.Calls);
        Assert.Equal(pipeline.Run("Berlin", AggregationStrategy.Simple), batch[0]);
        Assert.Equal(pipeline.Run(Wolfgang, AggregationStrategy.Simple), batch[1]);
    }

    [Fact]
    public void Batch_MixedLengths_PaddedPerLengthBucket_SameAsOneByOne_InInputOrder()
    {
        var (pipeline, model) = Build(Conll);
        WolfgangLogits(model);
        string[] texts = ["Berlin", Wolfgang, "Berlin", Wolfgang];

        var batch = pipeline.RunBatch(texts, AggregationStrategy.Simple, batchSize: 2);
        var calls = model.Calls.ToList();

        // The two long texts run together, then the two short ones padded only to their own length ([CLS] berlin [SEP]).
        Assert.Equal(2, calls.Count);
        Assert.Equal(3, calls[1].Ids[0].Length);
        Assert.True(calls[0].Ids[0].Length > 3);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(pipeline.Run(texts[i], AggregationStrategy.Simple), batch[i]);
        }
    }

    /// <summary>A byte-level BPE (GPT-2 style) over the 256 byte symbols with merges making "new", "Ġyork".</summary>
    private static ByteLevelBpeTokenizer ByteLevel()
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var c in ByteLevelBpeTokenizer.BytesToUnicode)
        {
            vocab[c.ToString()] = vocab.Count;
        }

        (string, string)[] merges = [("n", "e"), ("ne", "w"), ("o", "r"), ("or", "k"), ("\u0120", "y"), ("\u0120y", "ork")];
        foreach (var (left, right) in merges)
        {
            vocab[left + right] = vocab.Count;
        }

        vocab[ByteLevelBpeOptions.Gpt2EndOfText] = vocab.Count;
        return ByteLevelBpeTokenizer.Create(vocab, merges);
    }

    [Fact]
    public void WordAggregation_TokenizerWithoutSubwordPrefix_HfFallbackHeuristicAndWarning()
    {
        // "new yorkers" → new | Ġyork | e | r | s: a token is a subword when neither it nor the char before it is a space.
        var tokenizer = ByteLevel();
        var model = new FakeTokenClassifier(Conll);
        var warnings = new List<string>();
        var pipeline = new TokenClassificationPipeline(tokenizer, model, new PipelineOptions { Warning = warnings.Add });
        Assert.Equal(["new", "\u0120york", "e", "r", "s"], tokenizer.Encode("new yorkers").Tokens);
        model.LogitsById[tokenizer.TokenToId("new")!.Value] = Row(Conll, ("B-LOC", 4f));
        model.LogitsById[tokenizer.TokenToId("\u0120york")!.Value] = Row(Conll, ("I-LOC", 4f));
        foreach (var piece in new[] { "e", "r", "s" })
        {
            model.LogitsById[tokenizer.TokenToId(piece)!.Value] = Row(Conll, ("I-PER", 4f));
        }

        var simple = pipeline.Run("new yorkers", AggregationStrategy.Simple);
        Assert.Empty(warnings);
        var first = pipeline.Run("new yorkers", AggregationStrategy.First);

        Assert.Equal([("LOC", "new york", 0, 8), ("PER", "ers", 8, 11)], simple.Select(r => (r.Entity, r.Word, r.Start, r.End)));
        Assert.Equal([("LOC", "new yorkers", 0, 11)], first.Select(r => (r.Entity, r.Word, r.Start, r.End)));
        Assert.Equal("Tokenizer does not support real words, using fallback heuristic", Assert.Single(warnings));
    }

    [Fact]
    public void EmptyText_OneClearError()
    {
        var (pipeline, _) = Build(Conll);

        var error = Assert.Throws<ArgumentException>(() => pipeline.Run(" "));

        Assert.Contains("empty", error.Message, StringComparison.Ordinal);
    }
}
