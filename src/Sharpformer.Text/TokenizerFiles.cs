using System.Text.Json;

namespace Sharpformer.Text;

/// <summary>Readers for tokenizer files, each validating untrusted input and naming the file and the problem.</summary>
internal static class TokenizerFiles
{
    /// <summary>Files larger than this are refused before reading (real tokenizer.json files are tens of MB).</summary>
    public const long MaxFileBytes = 512L * 1024 * 1024;

    private static readonly JsonDocumentOptions JsonOptions = new() { MaxDepth = 64, AllowTrailingCommas = false };

    public static JsonDocument ReadJson(string path)
    {
        CheckSize(path);
        try
        {
            using var stream = File.OpenRead(path);
            return JsonDocument.Parse(stream, JsonOptions);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON ({e.Message}). Re-download the file.", e);
        }
    }

    public static Dictionary<string, int> ReadVocabJson(string path)
    {
        using var doc = ReadJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{path}: expected a JSON object {{\"token\": id, …}}, found {doc.RootElement.ValueKind}.");
        }

        return ReadVocabObject(doc.RootElement, path);
    }

    /// <summary>A {"token": id} object: ids must be non-negative integers and the count bounded.</summary>
    public static Dictionary<string, int> ReadVocabObject(JsonElement element, string source)
    {
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var property in element.EnumerateObject())
        {
            if (vocab.Count >= ByteLevelBpeTokenizer.MaxVocabularySize)
            {
                throw new InvalidDataException($"{source}: the vocabulary has more than {ByteLevelBpeTokenizer.MaxVocabularySize} entries; refusing it as malformed.");
            }

            if (property.Value.ValueKind != JsonValueKind.Number || !property.Value.TryGetInt32(out var id) || id < 0)
            {
                throw new InvalidDataException($"{source}: vocabulary entry '{property.Name}' has id {property.Value.GetRawText()}; ids must be non-negative integers.");
            }

            if (!vocab.TryAdd(property.Name, id))
            {
                throw new InvalidDataException($"{source}: vocabulary entry '{property.Name}' appears twice.");
            }
        }

        return vocab;
    }

    public static List<(string, string)> ReadMergesTxt(string path)
    {
        CheckSize(path);
        var merges = new List<(string, string)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if ((lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)) || line.Length == 0)
            {
                continue;
            }

            merges.Add(ParseMerge(line, $"{path} line {lineNumber}"));
            if (merges.Count > ByteLevelBpeTokenizer.MaxVocabularySize)
            {
                throw new InvalidDataException($"{path}: more than {ByteLevelBpeTokenizer.MaxVocabularySize} merges; refusing it as malformed.");
            }
        }

        return merges;
    }

    /// <summary>tokenizer.json merges: "left right" strings (older files) or ["left", "right"] arrays (newer files).</summary>
    public static List<(string, string)> ReadMergesArray(JsonElement merges, string source)
    {
        if (merges.ValueKind != JsonValueKind.Array)
        {
            throw new InvalidDataException($"{source}: model.merges must be an array.");
        }

        var result = new List<(string, string)>(merges.GetArrayLength());
        var index = 0;
        foreach (var merge in merges.EnumerateArray())
        {
            index++;
            if (merge.ValueKind == JsonValueKind.String)
            {
                result.Add(ParseMerge(merge.GetString()!, $"{source} merge {index}"));
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                result.Add((merge[0].GetString()!, merge[1].GetString()!));
            }
            else
            {
                throw new InvalidDataException($"{source}: merge {index} is {merge.GetRawText()}; expected \"left right\" or [\"left\", \"right\"].");
            }
        }

        return result;
    }

    private static (string, string) ParseMerge(string line, string where)
    {
        var parts = line.Split(' ');
        if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
        {
            throw new InvalidDataException($"{where}: '{line}' is not a merge; expected two tokens separated by one space.");
        }

        return (parts[0], parts[1]);
    }

    public static void CheckSize(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new FileNotFoundException($"{path} does not exist.", path);
        }

        if (info.Length > MaxFileBytes)
        {
            throw new InvalidDataException($"{path}: {info.Length} bytes is larger than the {MaxFileBytes}-byte limit for tokenizer files; this is not a tokenizer file.");
        }
    }

    // --- small JSON helpers for configs --------------------------------------------------------------------------

    public static bool? GetBool(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? v.GetBoolean()
            : null;

    public static string? GetString(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static int? GetInt(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var i) ? i : null;

    /// <summary>A special token given as "text" or as {"content": "text", …} (both appear in tokenizer_config.json).</summary>
    public static string? GetTokenContent(JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var v))
        {
            return null;
        }

        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object => GetString(v, "content"),
            _ => null,
        };
    }

    /// <summary>One added token object ({id?, content, special, lstrip, rstrip, single_word, normalized}).</summary>
    public static AddedToken ReadAddedToken(JsonElement token, int? id, string source)
    {
        var content = GetString(token, "content");
        var tokenId = id ?? GetInt(token, "id");
        if (content is null || content.Length == 0 || tokenId is null || tokenId < 0)
        {
            throw new InvalidDataException($"{source}: added token {token.GetRawText()} needs a non-empty \"content\" and a non-negative \"id\".");
        }

        var special = GetBool(token, "special") ?? false;
        return new AddedToken(
            content,
            tokenId.Value,
            special,
            LStrip: GetBool(token, "lstrip") ?? false,
            RStrip: GetBool(token, "rstrip") ?? false,
            SingleWord: GetBool(token, "single_word") ?? false,
            Normalized: GetBool(token, "normalized") ?? !special);
    }
}
