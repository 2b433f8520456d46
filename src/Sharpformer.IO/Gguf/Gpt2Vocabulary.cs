using System.Text.Json;

namespace Sharpformer.IO.Gguf;

/// <summary>
/// The GPT-2 byte-level BPE vocabulary as llama.cpp's GGUF tokenizer keys hold it: tokens by id, their types, and the
/// merges as "left right" strings in rank order. Read from either Hugging Face layout: tokenizer.json (the modern one
/// with merges as pairs, or the Hub's older one with merges as strings and no model.type) or vocab.json + merges.txt.
/// </summary>
public sealed record Gpt2Vocabulary(IReadOnlyList<string> Tokens, IReadOnlyList<GgufTokenType> TokenTypes, IReadOnlyList<string> Merges)
{
    /// <summary>Reads the tokenizer files of <paramref name="folder"/>, padded to <paramref name="vocabSize"/> ids.</summary>
    /// <param name="folder">The Hugging Face model folder.</param>
    /// <param name="vocabSize">The embedding's row count: ids without a token become unused "[PAD{id}]" slots.</param>
    /// <param name="controlIds">Ids that are control tokens even when the files don't say so (config's bos/eos).</param>
    /// <exception cref="GgufFormatException">No tokenizer files, a malformed file, or a token id ≥ <paramref name="vocabSize"/>.</exception>
    public static Gpt2Vocabulary Read(string folder, int vocabSize, IEnumerable<int> controlIds)
    {
        ArgumentNullException.ThrowIfNull(controlIds);
        var vocab = new Dictionary<int, string>();
        var merges = new List<string>();
        var special = new HashSet<int>(controlIds);
        var tokenizerJson = Path.Combine(folder, "tokenizer.json");
        var vocabJson = Path.Combine(folder, "vocab.json");
        var mergesTxt = Path.Combine(folder, "merges.txt");
        string source;
        if (File.Exists(tokenizerJson))
        {
            source = tokenizerJson;
            ReadTokenizerJson(tokenizerJson, vocab, merges, special);
        }
        else if (File.Exists(vocabJson) && File.Exists(mergesTxt))
        {
            source = vocabJson;
            ReadVocabJson(vocabJson, vocab);
            foreach (var line in File.ReadLines(mergesTxt))
            {
                if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0)
                {
                    continue;
                }

                merges.Add(CheckMerge(line, mergesTxt, merges.Count));
            }

            ReadSpecialFromTokenizerConfig(Path.Combine(folder, "tokenizer_config.json"), vocab, special);
        }
        else
        {
            throw new GgufFormatException($"{folder}: no GPT-2 tokenizer files; need tokenizer.json, or vocab.json and merges.txt.");
        }

        var tokens = new string[vocabSize];
        var types = new GgufTokenType[vocabSize];
        foreach (var (id, token) in vocab)
        {
            if (id < 0 || id >= vocabSize)
            {
                throw new GgufFormatException($"{source}: token '{token}' has id {id}, outside the model's vocab_size {vocabSize} (config.json); the tokenizer does not belong to these weights.");
            }

            if (tokens[id] is not null)
            {
                throw new GgufFormatException($"{source}: id {id} is used by both '{tokens[id]}' and '{token}'.");
            }

            tokens[id] = token;
            types[id] = special.Contains(id) ? GgufTokenType.Control : GgufTokenType.Normal;
        }

        for (var id = 0; id < vocabSize; id++)
        {
            if (tokens[id] is null)
            {
                // Same as llama.cpp's converter: embedding rows without a token are named and marked unused.
                tokens[id] = $"[PAD{id}]";
                types[id] = GgufTokenType.Unused;
            }
        }

        return new Gpt2Vocabulary(tokens, types, merges);
    }

    private static void ReadTokenizerJson(string path, Dictionary<int, string> vocab, List<string> merges, HashSet<int> special)
    {
        using var doc = Parse(path);
        var root = doc.RootElement;
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new GgufFormatException($"{path}: no 'model' object.");
        }

        if (model.TryGetProperty("type", out var type) && type.GetString() != "BPE")
        {
            throw new GgufFormatException($"{path}: model.type is '{type}', but a GPT-2 GGUF needs a byte-level BPE tokenizer.");
        }

        if (!model.TryGetProperty("vocab", out var v) || v.ValueKind != JsonValueKind.Object)
        {
            throw new GgufFormatException($"{path}: model.vocab is missing or not an object.");
        }

        AddVocab(path, v, vocab);
        if (!model.TryGetProperty("merges", out var m) || m.ValueKind != JsonValueKind.Array)
        {
            throw new GgufFormatException($"{path}: model.merges is missing or not an array.");
        }

        foreach (var merge in m.EnumerateArray())
        {
            // Modern layout: ["left", "right"]; the Hub's older layout: "left right".
            var text = merge.ValueKind switch
            {
                JsonValueKind.String => merge.GetString()!,
                JsonValueKind.Array when merge.GetArrayLength() == 2 && merge.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String) =>
                    merge[0].GetString() + " " + merge[1].GetString(),
                _ => throw new GgufFormatException($"{path}: model.merges[{merges.Count}] is neither \"left right\" nor [\"left\", \"right\"]."),
            };
            merges.Add(CheckMerge(text, path, merges.Count));
        }

        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
        {
            foreach (var token in added.EnumerateArray())
            {
                if (!token.TryGetProperty("id", out var id) || !id.TryGetInt32(out var idValue) || !token.TryGetProperty("content", out var content) || content.ValueKind != JsonValueKind.String)
                {
                    throw new GgufFormatException($"{path}: an added_tokens entry lacks an integer 'id' or a string 'content'.");
                }

                if (vocab.TryGetValue(idValue, out var existing) && existing != content.GetString())
                {
                    throw new GgufFormatException($"{path}: added token '{content.GetString()}' reuses id {idValue} of '{existing}'.");
                }

                vocab[idValue] = content.GetString()!;
                if (token.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True)
                {
                    special.Add(idValue);
                }
            }
        }
    }

    private static void ReadVocabJson(string path, Dictionary<int, string> vocab)
    {
        using var doc = Parse(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new GgufFormatException($"{path}: expected an object of token → id.");
        }

        AddVocab(path, doc.RootElement, vocab);
    }

    private static void ReadSpecialFromTokenizerConfig(string path, Dictionary<int, string> vocab, HashSet<int> special)
    {
        if (!File.Exists(path))
        {
            return;
        }

        using var doc = Parse(path);
        if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("added_tokens_decoder", out var decoder) && decoder.ValueKind == JsonValueKind.Object)
        {
            foreach (var entry in decoder.EnumerateObject())
            {
                if (int.TryParse(entry.Name, System.Globalization.CultureInfo.InvariantCulture, out var id) && entry.Value.ValueKind == JsonValueKind.Object &&
                    entry.Value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String)
                {
                    vocab.TryAdd(id, content.GetString()!);
                    if (entry.Value.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True)
                    {
                        special.Add(id);
                    }
                }
            }
        }
    }

    private static void AddVocab(string path, JsonElement v, Dictionary<int, string> vocab)
    {
        foreach (var entry in v.EnumerateObject())
        {
            if (!entry.Value.TryGetInt32(out var id))
            {
                throw new GgufFormatException($"{path}: token '{entry.Name}' has id {entry.Value}, not an integer.");
            }

            if (!vocab.TryAdd(id, entry.Name))
            {
                throw new GgufFormatException($"{path}: id {id} is used by both '{vocab[id]}' and '{entry.Name}'.");
            }
        }
    }

    private static string CheckMerge(string text, string path, int index)
    {
        var space = text.IndexOf(' ', StringComparison.Ordinal);
        if (space <= 0 || space == text.Length - 1 || text.IndexOf(' ', space + 1) >= 0)
        {
            throw new GgufFormatException($"{path}: merge #{index} '{text}' is not two tokens separated by one space.");
        }

        return text;
    }

    private static JsonDocument Parse(string path)
    {
        try
        {
            return JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            throw new GgufFormatException($"{path}: not valid JSON ({ex.Message})", ex);
        }
    }
}
