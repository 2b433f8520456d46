using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.IO.Hub;
using Sharpformer.Pipelines;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer tokenize [--model folder-or-repo] [--pair "text b"] [--json] "text"</c>: tokens, ids and offsets.</summary>
internal static class TokenizeCommand
{
    private static readonly string[] Header = ["#", "token", "id", "type", "offsets", "text"];

    /// <summary>The tokenizer of the lecture's fill-mask demo.</summary>
    internal const string DefaultModel = "bert-base-uncased";

    public static Command Create()
    {
        var text = new Argument<string>("text") { Description = "The text to tokenize." };
        var model = new Option<string>("--model")
        {
            Description = "A Hugging Face repo id (fetched into the HF cache) or a folder with tokenizer.json, or vocab.txt, or vocab.json + merges.txt.",
            DefaultValueFactory = _ => DefaultModel,
        };
        var pair = new Option<string?>("--pair") { Description = "A second text, encoded as a pair (BERT: after [SEP], token type 1)." };
        var json = new Option<bool>("--json") { Description = "Print the encoding as JSON instead of a table." };
        var command = new Command("tokenize", "Show how a tokenizer splits text: each token with its id, offsets and the original text it covers.")
        {
            text, model, pair, json,
        };
        command.SetAction(result => Run(result.GetValue(text)!, result.GetValue(model), result.GetValue(pair), result.GetValue(json), Console.Out, Console.Error,
            modelIsDefault: PipelineVerbs.IsDefault(result, model)));
        return command;
    }

    internal static int Run(string text, string? model, string? pair, bool json, TextWriter output, TextWriter error, bool modelIsDefault = false)
    {
        if (string.IsNullOrEmpty(model))
        {
            model = DefaultModel;
            modelIsDefault = true;
        }

        if (ShippedModels.IsShippedName(model) && !Directory.Exists(model))
        {
            model = ShippedModels.TryGetFolder(model) ?? model;
        }

        TextTokenizer tokenizer;
        try
        {
            tokenizer = AutoTokenizer.FromPretrained(Directory.Exists(model) ? model : FetchTokenizerFiles(model));
        }
        catch (Exception e) when (e is OfflineCacheMissException or HubNetworkException && modelIsDefault
            && ShippedModels.StandInFor(model) is { } standIn && ShippedModels.TryGetFolder(standIn) is { } shipped)
        {
            error.WriteLine($"note: {OneLine(e.Message)} Using the shipped {standIn} instead (online, the default is {model}).");
            tokenizer = AutoTokenizer.FromPretrained(shipped);
        }
        catch (HubException e)
        {
            error.WriteLine($"tokenize: cannot get the tokenizer of '{model}' from the Hugging Face Hub: {OneLine(e.Message)} Pass --model <folder with vocab.txt or tokenizer.json> to work offline.");
            return 1;
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"tokenize: '{model}' is neither a folder nor a valid Hub repo id: {OneLine(e.Message)}");
            return 2;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or UnauthorizedAccessException)
        {
            error.WriteLine($"tokenize: cannot load the tokenizer from '{model}': {e.Message}");
            return 1;
        }

        var encoding = tokenizer.Encode(text, pair);
        if (json)
        {
            WriteJson(output, model, text, pair, encoding);
        }
        else
        {
            WriteTable(output, tokenizer, text, pair, encoding);
        }

        return 0;
    }

    private static void WriteTable(TextWriter output, TextTokenizer tokenizer, string text, string? pair, TokenEncoding encoding)
    {
        output.WriteLine($"{tokenizer.GetType().Name}: {encoding.Count} tokens (offsets are UTF-16 indices into the text; 'type' is the token type id)");
        var rows = new List<string[]> { Header };
        for (var t = 0; t < encoding.Count; t++)
        {
            var source = SourceText(text, pair, encoding, t);
            rows.Add(
            [
                t.ToString(CultureInfo.InvariantCulture),
                Visible(encoding.Tokens[t]),
                encoding.Ids[t].ToString(CultureInfo.InvariantCulture),
                encoding.TypeIds[t].ToString(CultureInfo.InvariantCulture),
                encoding.Offsets[t].ToString(),
                encoding.SpecialTokensMask[t] == 1 ? "(special)" : "\"" + Visible(source) + "\"",
            ]);
        }

        var widths = Enumerable.Range(0, rows[0].Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            var line = new StringBuilder();
            for (var c = 0; c < row.Length; c++)
            {
                line.Append(c is 0 or 2 or 3 ? row[c].PadLeft(widths[c]) : row[c].PadRight(widths[c]));
                line.Append("  ");
            }

            output.WriteLine(line.ToString().TrimEnd());
        }

        output.WriteLine($"ids: [{string.Join(", ", encoding.Ids)}]");
    }

    /// <summary>
    /// Fetches the tokenizer files <paramref name="repoId"/> has (the tokenizer subset of <see cref="HubClient.OptionalModelFiles"/>)
    /// into the Hugging Face cache and returns their snapshot folder. Honours HF_ENDPOINT, HF_TOKEN, HF_HUB_CACHE, HF_HUB_OFFLINE.
    /// </summary>
    private static string FetchTokenizerFiles(string repoId)
    {
        using var hub = new HubClient(HubOptions.FromEnvironment());
        string? folder = null;
        foreach (string file in TokenizerFiles)
        {
            string? path = hub.TryDownloadFileAsync(repoId, file).GetAwaiter().GetResult();
            folder ??= path is null ? null : Path.GetDirectoryName(path);
        }

        // No tokenizer file at all: AutoTokenizer's error on an empty folder names what it looked for.
        return folder ?? throw new FileNotFoundException($"'{repoId}' has none of {string.Join(", ", TokenizerFiles)}.");
    }

    // The Hub client's list of optional model files is the one source of these names; generation settings are not needed here.
    private static readonly string[] TokenizerFiles =
        [.. HubClient.OptionalModelFiles.Where(f => f != "generation_config.json")];

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();

    private static void WriteJson(TextWriter output, string model, string text, string? pair, TokenEncoding encoding)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("model", model);
            w.WriteString("text", text);
            if (pair is not null)
            {
                w.WriteString("pair", pair);
            }

            WriteArray(w, "input_ids", encoding.Ids);
            WriteArray(w, "token_type_ids", encoding.TypeIds);
            WriteArray(w, "attention_mask", encoding.AttentionMask);
            WriteArray(w, "special_tokens_mask", encoding.SpecialTokensMask);
            w.WriteStartArray("offset_mapping");
            foreach (var offset in encoding.Offsets)
            {
                w.WriteStartArray();
                w.WriteNumberValue(offset.Start);
                w.WriteNumberValue(offset.End);
                w.WriteEndArray();
            }

            w.WriteEndArray();
            w.WriteStartArray("tokens");
            for (var t = 0; t < encoding.Count; t++)
            {
                w.WriteStartObject();
                w.WriteNumber("index", t);
                w.WriteString("token", encoding.Tokens[t]);
                w.WriteNumber("id", encoding.Ids[t]);
                w.WriteNumber("type_id", encoding.TypeIds[t]);
                w.WriteNumber("start", encoding.Offsets[t].Start);
                w.WriteNumber("end", encoding.Offsets[t].End);
                w.WriteNumber("sequence", encoding.SequenceIds[t]);
                w.WriteBoolean("special", encoding.SpecialTokensMask[t] == 1);
                w.WriteString("text", SourceText(text, pair, encoding, t));
                w.WriteEndObject();
            }

            w.WriteEndArray();
            w.WriteEndObject();
        }

        output.WriteLine(Encoding.UTF8.GetString(buffer.ToArray()));
    }

    private static void WriteArray(Utf8JsonWriter w, string name, IReadOnlyList<int> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values)
        {
            w.WriteNumberValue(v);
        }

        w.WriteEndArray();
    }

    /// <summary>The substring of the text (or pair) that token <paramref name="t"/> came from.</summary>
    private static string SourceText(string text, string? pair, TokenEncoding encoding, int t)
    {
        var source = encoding.SequenceIds[t] == 1 ? pair! : text;
        var offset = encoding.Offsets[t];
        return encoding.SequenceIds[t] < 0 ? "" : source[offset.Start..offset.End];
    }

    /// <summary>Control and invisible characters as \uXXXX so that a learner sees them.</summary>
    private static string Visible(string s)
    {
        var b = new StringBuilder(s.Length);
        foreach (var rune in s.EnumerateRunes())
        {
            var category = Rune.GetUnicodeCategory(rune);
            if (category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator)
            {
                b.Append(CultureInfo.InvariantCulture, $"\\u{rune.Value:X4}");
            }
            else
            {
                b.Append(rune.ToString());
            }
        }

        return b.ToString();
    }
}
