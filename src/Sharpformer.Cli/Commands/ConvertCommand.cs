using System.CommandLine;
using System.Globalization;
using System.Text.Encodings.Web;
using System.Text.Json;
using Sharpformer.IO.Onnx;

namespace Sharpformer.Cli.Commands;

/// <summary><c>sharpformer convert ...</c>: checkpoint importers; each source format is a sub-command.</summary>
internal static class ConvertCommand
{
    private static readonly JsonSerializerOptions JsonOut = new()
    {
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
    };

    public static Command Create()
    {
        var convert = new Command("convert", "Convert checkpoints from other formats into Hugging Face model folders.");
        convert.Subcommands.Add(CreateOnnxBert());
        return convert;
    }

    private static Command CreateOnnxBert()
    {
        var model = new Argument<string>("model.onnx") { Description = "The ONNX BERT export (e.g. a sentence-transformers model.onnx)." };
        var output = new Argument<string>("out-dir") { Description = "The Hugging Face folder to write (created if missing)." };
        var vocab = new Option<string?>("--vocab") { Description = "The WordPiece vocab.txt (default: vocab.txt next to the model)." };
        var json = new Option<bool>("--json") { Description = "Print the result (config, counts, files) as JSON instead of a summary." };
        var command = new Command("onnx-bert", "Import an ONNX-exported BERT into a Hugging Face folder: config.json, model.safetensors, vocab.txt, tokenizer_config.json.");
        command.Arguments.Add(model);
        command.Arguments.Add(output);
        command.Options.Add(vocab);
        command.Options.Add(json);
        command.SetAction(parse => Run(parse.GetValue(model)!, parse.GetValue(output)!, parse.GetValue(vocab), parse.GetValue(json), Console.Out, Console.Error));
        return command;
    }

    internal static int Run(string model, string output, string? vocab, bool json, TextWriter stdout, TextWriter stderr)
    {
        BertOnnxConversion result;
        try
        {
            result = BertOnnxConverter.ConvertToHuggingFace(model, output, vocab);
        }
        catch (Exception ex) when (ex is OnnxFormatException or IOException or InvalidDataException or UnauthorizedAccessException or ArgumentException or IO.SafeTensors.SafeTensorsException)
        {
            // One line: the message already names the file, the element and the rule.
            stderr.WriteLine($"error: convert onnx-bert: {ex.Message.ReplaceLineEndings(" ")}");
            return 1;
        }

        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(
                new { output_dir = result.OutputDirectory, tensors = result.TensorCount, parameters = result.ParameterCount, config = result.Config, files = result.Files },
                JsonOut));
            return 0;
        }

        var c = result.Config;
        var inv = CultureInfo.InvariantCulture;
        stdout.WriteLine(string.Create(inv, $"Converted {model} → {result.OutputDirectory}"));
        stdout.WriteLine(string.Create(inv, $"  BERT: {c.NumHiddenLayers} layers, hidden {c.HiddenSize}, {c.NumAttentionHeads} heads, intermediate {c.IntermediateSize}, {c.HiddenAct}, layer_norm_eps {c.LayerNormEps:R}"));
        stdout.WriteLine(string.Create(inv, $"  vocab {c.VocabSize}, max positions {c.MaxPositionEmbeddings}, token types {c.TypeVocabSize}, pooler {(c.HasPooler ? "yes" : "no")}"));
        stdout.WriteLine(string.Create(inv, $"  {result.TensorCount} tensors, {result.ParameterCount:N0} parameters"));
        foreach (string file in result.Files) stdout.WriteLine($"  wrote {file}");
        return 0;
    }
}
