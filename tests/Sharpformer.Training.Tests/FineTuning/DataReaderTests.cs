using Sharpformer.Models;
using Sharpformer.Training.FineTuning;

namespace Sharpformer.Training.Tests.FineTuning;

public sealed class DataReaderTests : IDisposable
{
    private readonly FineTuningKit _kit = new();

    public void Dispose() => _kit.Dispose();

    [Fact]
    public void DelimitedText_Rfc4180_QuotesDelimitersNewlinesAndDoubledQuotes()
    {
        var records = DelimitedText.Parse("text,label\r\n\"a, b\",x\r\n\"say \"\"hi\"\"\nthere\",y\n\nplain,z", ',', "t.csv");

        Assert.Equal(4, records.Count);
        Assert.Equal(["a, b", "x"], records[1].Fields);
        Assert.Equal(["say \"hi\"\nthere", "y"], records[2].Fields);
        Assert.Equal(3, records[2].Line);
        Assert.Equal(6, records[3].Line);
        Assert.Equal(["plain", "z"], records[3].Fields);
    }

    [Fact]
    public void DelimitedText_UnclosedQuote_NamesFileAndLine()
    {
        var error = Assert.Throws<InvalidDataException>(() => DelimitedText.Parse("text,label\nok,1\n\"broken,2\n", ',', "t.csv"));
        Assert.StartsWith("t.csv:3:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Classification_CsvStringLabels_SortedByDefaultOrFirstSeen()
    {
        var path = _kit.Write("c.csv", "text,label\nthe heart,organ\n\"blood, red\",fluid\nlung,organ\n");

        var sorted = ClassificationData.Read(path);
        var firstSeen = ClassificationData.Read(path, new ClassificationReadOptions { LabelOrder = LabelOrder.FirstSeen });

        Assert.Equal(["fluid", "organ"], sorted.LabelNames);
        Assert.Equal(["organ", "fluid"], firstSeen.LabelNames);
        Assert.Equal(ClassificationProblem.SingleLabel, sorted.Problem);
        Assert.Equal("blood, red", sorted.Examples[1].Text);
        Assert.Equal(3, sorted.Examples[1].Line);
    }

    [Fact]
    public void Classification_TsvIntegerLabels_AreClassesSortedNumerically()
    {
        var path = _kit.Write("c.tsv", "text\ttext_pair\tlabel\na\tb\t10\nc\td\t2\ne\tf\t1\n");

        var data = ClassificationData.Read(path);

        Assert.Equal(["1", "2", "10"], data.LabelNames);
        Assert.True(data.HasTextPairs);
        Assert.Equal("b", data.Examples[0].TextPair);
    }

    [Fact]
    public void Classification_JsonlListsAndNumbers_MultiLabelAndRegression()
    {
        var multi = ClassificationData.Read(_kit.Write("m.jsonl", "{\"text\": \"a\", \"label\": [\"x\", \"y\"]}\n{\"text\": \"b\", \"label\": []}\n"));
        var regression = ClassificationData.Read(_kit.Write("r.jsonl", "{\"text\": \"a\", \"label\": 0.5}\n{\"text\": \"b\", \"label\": 3}\n"));

        Assert.Equal(ClassificationProblem.MultiLabel, multi.Problem);
        Assert.Equal(["x", "y"], multi.LabelNames);
        Assert.Equal(ClassificationProblem.Regression, regression.Problem);
        Assert.Equal([0.5f], regression.Examples[0].Values!);
        Assert.Equal([3f], regression.Examples[1].Values!);
    }

    [Fact]
    public void Classification_BadInput_OneClearErrorWithFileAndLine()
    {
        var empty = _kit.Write("empty.csv", string.Empty);
        var noColumn = _kit.Write("nocol.csv", "sentence,label\na,b\n");
        var mixed = _kit.Write("mixed.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n\n{\"text\": \"b\", \"label\": [\"x\"]}\n");
        var unknown = _kit.Write("unknown.csv", "text,label\na,x\nb,z\n");
        var noLabel = _kit.Write("nolabel.jsonl", "{\"text\": \"a\"}\n");

        Assert.Contains("empty.csv: the file is empty", Assert.Throws<InvalidDataException>(() => ClassificationData.Read(empty)).Message, StringComparison.Ordinal);
        Assert.Contains("nocol.csv:1: the header has no 'text' column", Assert.Throws<InvalidDataException>(() => ClassificationData.Read(noColumn)).Message, StringComparison.Ordinal);
        Assert.Contains("mixed.jsonl:3: inconsistent labels", Assert.Throws<InvalidDataException>(() => ClassificationData.Read(mixed)).Message, StringComparison.Ordinal);
        Assert.Contains("unknown.csv:3: unknown label 'z'", Assert.Throws<InvalidDataException>(() => ClassificationData.Read(unknown, new ClassificationReadOptions { Labels = ["x", "y"] })).Message, StringComparison.Ordinal);
        Assert.Contains("nolabel.jsonl:1: no 'label' field", Assert.Throws<InvalidDataException>(() => ClassificationData.Read(noLabel)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CheckTextPairs_ModelWithoutTokenTypes_NamesTheFirstPairLine()
    {
        var data = ClassificationData.Read(_kit.Write("p.jsonl", "{\"text\": \"a\", \"label\": \"x\"}\n{\"text\": \"b\", \"text_pair\": \"c\", \"label\": \"y\"}\n"));

        ClassificationData.CheckTextPairs(data, usesTokenTypes: true);
        var error = Assert.Throws<InvalidDataException>(() => ClassificationData.CheckTextPairs(data, usesTokenTypes: false));
        Assert.Contains("p.jsonl:2:", error.Message, StringComparison.Ordinal);
        Assert.Contains("token_type_ids", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TokenTags_Conll_SkipsDocstartTakesLastColumnSortsTags()
    {
        var path = _kit.Write("ner.conll", "-DOCSTART- -X- O O\n\nThe DT O\nheart NN B-BODY\n\n\nInsulin NN B-DRUG\nhelps VB O\n");

        var data = TokenClassificationData.Read(path);

        Assert.Equal(2, data.Examples.Count);
        Assert.Equal(["The", "heart"], data.Examples[0].Tokens);
        Assert.Equal(["O", "B-BODY"], data.Examples[0].Tags);
        Assert.Equal(3, data.Examples[0].Line);
        Assert.Equal(7, data.Examples[1].Line);
        Assert.Equal(["B-BODY", "B-DRUG", "O"], data.LabelNames);
    }

    [Fact]
    public void TokenTags_BadInput_NamesFileAndLine()
    {
        var mismatch = _kit.Write("m.jsonl", "{\"tokens\": [\"a\"], \"tags\": [\"O\"]}\n{\"tokens\": [\"a\", \"b\"], \"tags\": [\"O\"]}\n");
        var noTag = _kit.Write("n.conll", "heart B-BODY\nlonely\n");
        var unknown = _kit.Write("u.conll", "heart B-BODY\n\nlung B-ORGAN\n");

        Assert.Contains("m.jsonl:2: 2 tokens but 1 tags", Assert.Throws<InvalidDataException>(() => TokenClassificationData.Read(mismatch)).Message, StringComparison.Ordinal);
        Assert.Contains("n.conll:2:", Assert.Throws<InvalidDataException>(() => TokenClassificationData.Read(noTag)).Message, StringComparison.Ordinal);
        Assert.Contains("u.conll:3: unknown tag 'B-ORGAN'", Assert.Throws<InvalidDataException>(() => TokenClassificationData.Read(unknown, ["B-BODY", "O"])).Message, StringComparison.Ordinal);
        Assert.Contains("the file has no sentences", Assert.Throws<InvalidDataException>(() => TokenClassificationData.Read(_kit.Write("e.conll", "\n\n"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Squad_V1AndV2_ReadAndCheckAnswers()
    {
        var path = _kit.Write("squad.json", """
            {"version": "v2.0", "data": [{"title": "Body", "paragraphs": [{"context": "The heart pumps blood.", "qas": [
              {"id": "q1", "question": "What pumps blood?", "answers": [{"text": "heart", "answer_start": 4}, {"text": "The heart", "answer_start": 0}]},
              {"id": "q2", "question": "What pumps air?", "answers": [], "is_impossible": true}]}]}]}
            """);

        var examples = SquadData.Read(path);

        Assert.Equal(2, examples.Count);
        Assert.StartsWith(path + ":2:", examples[0].Location, StringComparison.Ordinal);
        Assert.StartsWith(path + ":3:", examples[1].Location, StringComparison.Ordinal);
        Assert.Equal("Body", examples[0].Title);
        Assert.Equal(2, examples[0].Answers.Count);
        Assert.True(examples[1].IsImpossible);
        Assert.Empty(examples[1].Answers);
    }

    [Fact]
    public void Squad_AnswerNotAtStart_NamesFileQuestionAndWhatIsThere()
    {
        var path = _kit.Write("bad.json", """
            {"data": [{"title": "t", "paragraphs": [{"context": "The heart pumps blood.", "qas": [
              {"id": "q1", "question": "?", "answers": [{"text": "heart", "answer_start": 3}]}]}]}]}
            """);

        var error = Assert.Throws<InvalidDataException>(() => SquadData.Read(path));
        Assert.Contains("bad.json:2: data[0].paragraphs[0].qas[0].answers[0] (id q1)", error.Message, StringComparison.Ordinal);
        Assert.Contains("found ' hear'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Squad_NoAnswersNotImpossible_Throws()
    {
        var path = _kit.Write("none.json", """{"data": [{"paragraphs": [{"context": "c", "qas": [{"id": "q", "question": "?", "answers": []}]}]}]}""");
        Assert.Contains("is_impossible", Assert.Throws<InvalidDataException>(() => SquadData.Read(path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TrainValidation_SeededDisjointAndComplete()
    {
        var items = Enumerable.Range(0, 50).ToList();

        var (train, validation) = DataSplit.TrainValidation(items, 0.2, seed: 7);
        var (train2, validation2) = DataSplit.TrainValidation(items, 0.2, seed: 7);
        var (_, validation3) = DataSplit.TrainValidation(items, 0.2, seed: 8);

        Assert.Equal(10, validation.Count);
        Assert.Equal(items, train.Concat(validation).Order());
        Assert.Equal(validation, validation2);
        Assert.Equal(train, train2);
        Assert.NotEqual(validation, validation3);
    }
}
