using System.CommandLine;
using System.Text.Json;
using Sharpformer.Training.Metrics;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer bleu HYPOTHESES REFERENCES… [--lowercase] [--tokenize 13a|none] [--json]</c>: corpus BLEU as
/// sacreBLEU's default computes it, one segment per line; several reference files are several reference streams.
/// </summary>
internal static class BleuCommand
{
    public static Command Create()
    {
        var hypotheses = new Argument<string>("hypotheses") { Description = "The system output, one segment per line." };
        var references = new Argument<string[]>("references") { Description = "One or more reference files, each with one segment per line.", Arity = ArgumentArity.OneOrMore };
        var lowercase = new Option<bool>("--lowercase") { Description = "Lowercase before counting (sacreBLEU -lc)." };
        var tokenize = new Option<string>("--tokenize") { Description = "Tokenizer: 13a (mteval-v13a, the default) or none.", DefaultValueFactory = _ => "13a" };
        tokenize.AcceptOnlyFromAmong("13a", "none");
        var json = PipelineVerbs.JsonOption();
        var command = new Command("bleu", "Corpus BLEU of a system output against references, equal to sacreBLEU's default (13a, exp smoothing).")
        {
            hypotheses, references, lowercase, tokenize, json,
        };
        command.SetAction((parse, ct) => RunAsync(parse.GetValue(hypotheses)!, parse.GetValue(references)!, parse.GetValue(lowercase), parse.GetValue(tokenize)!,
            parse.GetValue(json), parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error));
        return command;
    }

    internal static Task<int> RunAsync(string hypotheses, string[] references, bool lowercase, string tokenize, bool json, TextWriter output, TextWriter error) =>
        PipelineVerbs.GuardAsync("bleu", error, async () =>
        {
            var hyps = ReadLines(hypotheses);
            var refs = references.Select(r => (IReadOnlyList<string>)ReadLines(r)).ToList();
            for (int k = 0; k < refs.Count; k++)
            {
                if (refs[k].Count != hyps.Count)
                {
                    throw new ArgumentException($"{references[k]} has {refs[k].Count} lines but {hypotheses} has {hyps.Count}; give one reference line per hypothesis line.");
                }
            }

            var score = Bleu.Corpus(hyps, refs, new BleuOptions { Lowercase = lowercase, Tokenize = tokenize == "none" ? BleuTokenizer.None : BleuTokenizer.Mteval13a });
            if (json)
            {
                await output.WriteLineAsync(JsonSerializer.Serialize(
                    new { score = score.Score, counts = score.Counts, totals = score.Totals, precisions = score.Precisions, bp = score.BrevityPenalty, sys_len = score.HypothesisLength, ref_len = score.ReferenceLength },
                    PipelineVerbs.Json)).ConfigureAwait(false);
            }
            else
            {
                await output.WriteLineAsync(score.ToString()).ConfigureAwait(false);
            }

            return 0;
        });

    private static List<string> ReadLines(string path)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} does not exist; pass a text file with one segment per line.", path);
        }

        var lines = File.ReadAllLines(path).ToList();
        return lines;
    }
}
