// What the fine-tuning heads (BertFor*, DistilBertFor*, Gpt2ForSequenceClassification) share: their outputs, the
// losses transformers' heads compute from `labels`, the load rules for a head on top of a base or MLM checkpoint,
// and the Hugging Face folder they save.
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Tensors;

namespace Sharpformer.Models;

/// <summary>What a sequence classifier returns, as Hugging Face's SequenceClassifierOutput.</summary>
/// <param name="Logits">[B, L] scores, L = num_labels.</param>
/// <param name="Loss">The loss when labels were given (see <see cref="ISequenceClassifier.ClassificationLoss"/>), else null.</param>
/// <param name="HiddenStates">When requested: the embeddings output then every layer's output, each [B, T, C].</param>
/// <param name="Attentions">When requested: every layer's attention probabilities [B, H, T, T].</param>
public sealed record SequenceClassifierOutput(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>What a token classifier returns, as Hugging Face's TokenClassifierOutput.</summary>
/// <param name="Logits">[B, T, L] scores per token.</param>
/// <param name="Loss">The mean cross-entropy over labelled tokens when labels were given, else null.</param>
/// <param name="HiddenStates">When requested: every layer's output [B, T, C].</param>
/// <param name="Attentions">When requested: every layer's attention probabilities [B, H, T, T].</param>
public sealed record TokenClassifierOutput(Tensor Logits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>What an extractive QA model returns, as Hugging Face's QuestionAnsweringModelOutput.</summary>
/// <param name="StartLogits">[B, T] scores of each token starting the answer.</param>
/// <param name="EndLogits">[B, T] scores of each token ending the answer.</param>
/// <param name="Loss">(start CE + end CE) / 2 when positions were given, else null.</param>
/// <param name="HiddenStates">When requested: every layer's output [B, T, C].</param>
/// <param name="Attentions">When requested: every layer's attention probabilities [B, H, T, T].</param>
public sealed record QuestionAnsweringOutput(Tensor StartLogits, Tensor EndLogits, Tensor? Loss, IReadOnlyList<Tensor>? HiddenStates, IReadOnlyList<Tensor>? Attentions);

/// <summary>
/// A model that saves itself as a Hugging Face folder (config.json with its class in <c>architectures</c> and its label
/// keys, model.safetensors with the checkpoint names), which transformers' <c>from_pretrained</c> loads. The trainer
/// writes its folders through <see cref="ConfigJson"/> and <see cref="Module.SaveSafetensors"/>.
/// </summary>
public interface IPretrainedModel
{
    /// <summary>The transformers class name written to <c>architectures</c> (e.g. <c>BertForSequenceClassification</c>).</summary>
    string ArchitectureName { get; }

    /// <summary>config.json as this model would save it now: the loaded file's keys, then architectures, torch_dtype, and the label keys.</summary>
    /// <returns>A fresh JSON object the caller may change.</returns>
    JsonObject ConfigJson();

    /// <summary>Writes config.json and model.safetensors (F32, HF names, metadata format=pt) into <paramref name="folder"/>, creating it.</summary>
    /// <param name="folder">The output folder; existing files of those names are replaced.</param>
    void SavePretrained(string folder);
}

/// <summary>Losses, label checks, loading and saving shared by the task heads.</summary>
internal static class TaskHeads
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    /// <summary>The config's labels in id order.</summary>
    public static string[] Labels(ModelConfig config)
    {
        var labels = new string[config.NumLabels];
        for (int i = 0; i < labels.Length; i++) labels[i] = config.Id2Label[i];
        return labels;
    }

    /// <summary>The problem type as <see cref="ISequenceClassifier.Problem"/> reports it before any labels are seen: the config's, else regression for one label and single-label otherwise.</summary>
    public static ClassificationProblem Problem(string? problemType, int numLabels) => problemType switch
    {
        "regression" => ClassificationProblem.Regression,
        "multi_label_classification" => ClassificationProblem.MultiLabel,
        "single_label_classification" => ClassificationProblem.SingleLabel,
        _ => numLabels == 1 ? ClassificationProblem.Regression : ClassificationProblem.SingleLabel,
    };

    /// <summary>config.json's spelling of <paramref name="problem"/>.</summary>
    public static string ProblemTypeName(ClassificationProblem problem) => problem switch
    {
        ClassificationProblem.Regression => "regression",
        ClassificationProblem.MultiLabel => "multi_label_classification",
        _ => "single_label_classification",
    };

    /// <summary>
    /// HF's decision when problem_type is unset, made from the first labels seen: regression if num_labels == 1,
    /// single-label if the labels are integer class ids, multi-label otherwise.
    /// </summary>
    public static string DecideProblemType(int numLabels, Tensor labels) =>
        numLabels == 1 ? "regression"
        : labels.DType is DType.I32 or DType.I64 ? "single_label_classification"
        : "multi_label_classification";

    /// <summary>
    /// The loss of a sequence classifier's logits [B, L] against <paramref name="labels"/> as transformers computes it:
    /// CrossEntropy over class ids (−100 ignored), BCEWithLogits over [B, L] targets, MSE (logits and labels squeezed
    /// when L == 1).
    /// </summary>
    public static Tensor SequenceLoss(string model, Tensor logits, Tensor labels, string problemType)
    {
        ArgumentNullException.ThrowIfNull(labels);
        int b = logits.Shape[0], l = logits.Shape[1];
        switch (problemType)
        {
            case "single_label_classification":
                {
                    if (labels.DType is not (DType.I32 or DType.I64) || labels.Shape.ElementCount != b || labels.Rank > 2)
                    {
                        throw new ArgumentException($"{model}: single-label classification needs labels I32/I64 [B] = [{b}] (one class id per example), got {labels.DType} {labels.Shape}; for 0/1 vectors set problem_type multi_label_classification and pass F32 [B, {l}].", nameof(labels));
                    }

                    var ids = Bert.BertLoading.ReadIds(labels);
                    CheckClassIds(model, ids, l, "example");
                    return Ops.CrossEntropy(logits, Tensor.FromArray(ids, new Shape(b)));
                }

            case "multi_label_classification":
                {
                    if (labels.DType != DType.F32 || labels.Shape != new Shape(b, l))
                    {
                        throw new ArgumentException($"{model}: multi-label classification needs labels F32 [B, L] = [{b}, {l}] (a 0/1 target per class), got {labels.DType} {labels.Shape}.", nameof(labels));
                    }

                    return Ops.BinaryCrossEntropyWithLogits(logits, labels);
                }

            default:
                {
                    if (labels.DType != DType.F32)
                    {
                        throw new ArgumentException($"{model}: regression needs F32 labels, got {labels.DType} {labels.Shape}; convert the targets to float (or set problem_type single_label_classification for class ids).", nameof(labels));
                    }

                    if (l == 1)
                    {
                        if (labels.Shape.ElementCount != b || labels.Rank > 2)
                        {
                            throw new ArgumentException($"{model}: regression with num_labels 1 needs labels [B] = [{b}] (one target per example), got {labels.Shape}.", nameof(labels));
                        }

                        return Ops.MseLoss(Ops.Reshape(logits, b), labels.Reshape(b));
                    }

                    if (labels.Shape != new Shape(b, l))
                    {
                        throw new ArgumentException($"{model}: regression with num_labels {l} needs labels [B, L] = [{b}, {l}], got {labels.Shape}.", nameof(labels));
                    }

                    return Ops.MseLoss(logits, labels);
                }
        }
    }

    /// <summary>Token classification: mean cross-entropy of logits [B, T, L] against labels [B, T] (−100 ignored).</summary>
    public static Tensor TokenLoss(string model, Tensor logits, Tensor labels)
    {
        ArgumentNullException.ThrowIfNull(labels);
        int b = logits.Shape[0], t = logits.Shape[1], l = logits.Shape[2];
        if (labels.DType is not (DType.I32 or DType.I64) || labels.Shape != new Shape(b, t))
        {
            throw new ArgumentException($"{model}: token classification needs labels I32/I64 [B, T] = [{b}, {t}] (input_ids' shape, −100 where not scored), got {labels.DType} {labels.Shape}.", nameof(labels));
        }

        var ids = Bert.BertLoading.ReadIds(labels);
        CheckClassIds(model, ids, l, "token");
        return Ops.CrossEntropy(Ops.Reshape(logits, b * t, l), Tensor.FromArray(ids, new Shape(b * t)));
    }

    /// <summary>
    /// Splits qa_outputs' [B, T, 2] into start and end logits [B, T] (module path: views on the tape).
    /// </summary>
    public static (Tensor Start, Tensor End) SplitSpans(Tensor logits)
    {
        int b = logits.Shape[0], t = logits.Shape[1];
        var start = Ops.Reshape(Ops.Narrow(logits, 2, 0, 1), b, t);
        var end = Ops.Reshape(Ops.Narrow(logits, 2, 1, 1), b, t);
        return (start, end);
    }

    /// <summary>
    /// HF's QA loss: positions clamped to [0, T], position T ignored (answers cut out of the window), the mean of the
    /// start and end cross-entropies.
    /// </summary>
    public static Tensor QaLoss(string model, Tensor start, Tensor end, Tensor startPositions, Tensor endPositions)
    {
        int b = start.Shape[0], t = start.Shape[1];
        var starts = Positions(model, startPositions, b, t, "start_positions");
        var ends = Positions(model, endPositions, b, t, "end_positions");
        var startLoss = Ops.CrossEntropy(start, starts, ignoreIndex: t);
        var endLoss = Ops.CrossEntropy(end, ends, ignoreIndex: t);
        return Ops.Scale(Ops.Add(startLoss, endLoss), 0.5f);
    }

    private static Tensor Positions(string model, Tensor positions, int b, int t, string name)
    {
        ArgumentNullException.ThrowIfNull(positions, name);
        if (positions.DType is not (DType.I32 or DType.I64) || positions.Shape.ElementCount != b || positions.Rank > 2)
        {
            throw new ArgumentException($"{model}: {name} must be I32/I64 [B] = [{b}] (one token index per example), got {positions.DType} {positions.Shape}.", name);
        }

        var ids = Bert.BertLoading.ReadIds(positions);
        for (int i = 0; i < ids.Length; i++) ids[i] = Math.Clamp(ids[i], 0, t);
        return Tensor.FromArray(ids, new Shape(b));
    }

    private static void CheckClassIds(string model, int[] labels, int numLabels, string what)
    {
        for (int i = 0; i < labels.Length; i++)
        {
            if (labels[i] != -100 && (uint)labels[i] >= (uint)numLabels)
            {
                throw new ArgumentException($"{model}: label {labels[i]} of {what} {i} is not a class id: the model has num_labels {numLabels} (ids 0 … {numLabels - 1}, −100 to ignore). Fix the labels, or load the model with more labels (id2label).", nameof(labels));
            }
        }
    }

    /// <summary>
    /// The builder of a head checkpoint: missing tensors are initialised (reported as missing, as HF's load report
    /// lists newly initialised weights); <see cref="CheckMissing"/> then allows that only for the head.
    /// </summary>
    public static VarBuilder OpenHead(ISafeTensorsSource source, int seed) => VarBuilder.FromSafeTensors(source, allowMissing: true, seed: seed);

    /// <summary>Throws when the load report lists a missing tensor outside the head (and the pooler a head may add).</summary>
    public static LoadReport CheckMissing(string model, string folder, LoadReport report, params string[] headPrefixes)
    {
        foreach (var name in report.Missing)
        {
            if (!headPrefixes.Any(prefix => name.StartsWith(prefix, StringComparison.Ordinal)))
            {
                throw new ModelLoadException($"{model}.FromPretrained('{folder}'): tensor '{name}' is missing; only the task head ({string.Join(", ", headPrefixes.Select(p => p + "*"))}) may be newly initialised. The checkpoint does not match config.json (check model_type and the sizes).");
            }
        }

        return report;
    }

    /// <summary>config.json of a head model: the source file's keys, then architectures, torch_dtype and the label keys.</summary>
    public static JsonObject ConfigJson(ModelConfig config, string architecture, string? problemType)
    {
        JsonObject json = config.SourceJson is { } text
            ? JsonNode.Parse(text)!.AsObject()
            : new JsonObject { ["model_type"] = config.ModelType };
        json["architectures"] = new JsonArray(architecture);
        json["torch_dtype"] = "float32";
        var id2label = new JsonObject();
        var label2id = new JsonObject();
        for (int i = 0; i < config.NumLabels; i++)
        {
            string label = config.Id2Label[i];
            id2label[i.ToString(CultureInfo.InvariantCulture)] = label;
            label2id[label] = i;
        }

        json["id2label"] = id2label;
        json["label2id"] = label2id;
        json["num_labels"] = config.NumLabels;
        if (problemType is null)
        {
            json.Remove("problem_type");
        }
        else
        {
            json["problem_type"] = problemType;
        }

        return json;
    }

    /// <summary>Writes config.json and model.safetensors of <paramref name="model"/> into <paramref name="folder"/>.</summary>
    public static void Save(Module model, JsonObject config, string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString(Indented) + "\n");
        model.SaveSafetensors(Path.Combine(folder, "model.safetensors"), new Dictionary<string, string> { ["format"] = "pt" });
    }
}
