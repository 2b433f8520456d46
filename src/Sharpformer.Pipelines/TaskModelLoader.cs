using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Pipelines;

/// <summary>Resolves a task model ("org/name" or a folder) and loads its tokenizer and head through the Auto* factories.</summary>
internal static class TaskModelLoader
{
    private const string FolderHint =
        "pass --model a local folder with config.json, model.safetensors and the tokenizer files (vocab.txt or tokenizer.json), e.g. one written by `sharpformer finetune` or SavePretrained.";

    /// <summary>The tokenizer and sequence classifier (AutoModelForSequenceClassification) of a model.</summary>
    public static async Task<(TextTokenizer Tokenizer, ISequenceClassifier Model)> LoadSequenceClassifierAsync(string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        options ??= new PipelineOptions();
        var folder = await ResolveAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        WarnWithoutHead(folder, modelIdOrFolder, options, "text-classification", ["classifier.weight", "score.weight"]);
        return (AutoTokenizer.FromPretrained(folder), ModelLoader.WithPrecision(AutoModelForSequenceClassification.FromPretrained(folder), options));
    }

    /// <summary>The tokenizer and token classifier (AutoModelForTokenClassification) of a model.</summary>
    public static async Task<(TextTokenizer Tokenizer, ITokenClassifier Model)> LoadTokenClassifierAsync(string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        options ??= new PipelineOptions();
        var folder = await ResolveAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        WarnWithoutHead(folder, modelIdOrFolder, options, "token-classification", ["classifier.weight"]);
        return (AutoTokenizer.FromPretrained(folder), ModelLoader.WithPrecision(AutoModelForTokenClassification.FromPretrained(folder), options));
    }

    /// <summary>The tokenizer and extractive QA model (AutoModelForQuestionAnswering) of a model.</summary>
    public static async Task<(TextTokenizer Tokenizer, IQuestionAnswering Model)> LoadQuestionAnsweringAsync(string modelIdOrFolder, PipelineOptions? options, CancellationToken ct)
    {
        options ??= new PipelineOptions();
        var folder = await ResolveAsync(modelIdOrFolder, options, ct).ConfigureAwait(false);
        WarnWithoutHead(folder, modelIdOrFolder, options, "question-answering", ["qa_outputs.weight"]);
        return (AutoTokenizer.FromPretrained(folder), ModelLoader.WithPrecision(AutoModelForQuestionAnswering.FromPretrained(folder), options));
    }

    private static async Task<string> ResolveAsync(string modelIdOrFolder, PipelineOptions options, CancellationToken ct)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelIdOrFolder);
        var files = await ModelFolders.ResolveAsync(modelIdOrFolder, options, FolderHint, ct).ConfigureAwait(false);
        return files.Directory;
    }

    /// <summary>
    /// HF's pipelines load a base checkpoint with a newly initialised head and log that; here the warning says the
    /// scores will be random and what to use instead.
    /// </summary>
    private static void WarnWithoutHead(string folder, string name, PipelineOptions options, string task, string[] headTensors)
    {
        if (options.Warning is null)
        {
            return;
        }

        using var weights = SafeTensorsLoader.Open(folder);
        if (!headTensors.Any(weights.Contains))
        {
            options.Warning($"{name} has no trained {task} head ({string.Join(" or ", headTensors)}); it is newly initialised, so the scores are random. Use a checkpoint fine-tuned for {task}.");
        }
    }
}
