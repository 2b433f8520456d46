using System.Text.Json;
using System.Text.Json.Nodes;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Optim;

/// <summary>
/// What <see cref="Optimizer.StateDict"/> returns and <see cref="Optimizer.LoadStateDict"/> takes: the state tensors
/// (F32, named <c>&lt;buffer&gt;.&lt;parameter name&gt;</c>, e.g. <c>exp_avg.bert.embeddings.word_embeddings.weight</c>)
/// for a safetensors file, and the scalars (optimizer name, step count, per-parameter steps) for a JSON file.
/// </summary>
public sealed class OptimizerState
{
    /// <summary>Wraps the parts of a state (the dictionaries are used as given, not copied).</summary>
    /// <param name="optimizer">The optimizer's <see cref="Optimizer.Name"/>.</param>
    /// <param name="stepCount">Its <see cref="Optimizer.StepCount"/>; ≥ 0.</param>
    /// <param name="tensors">State tensors by name.</param>
    /// <param name="parameterSteps">Per-parameter step counts by parameter name (empty for optimizers that keep none).</param>
    /// <exception cref="ArgumentException">The name is empty or the step count negative.</exception>
    public OptimizerState(string optimizer, long stepCount, IReadOnlyDictionary<string, Tensor> tensors, IReadOnlyDictionary<string, long> parameterSteps)
    {
        ArgumentException.ThrowIfNullOrEmpty(optimizer);
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(parameterSteps);
        ArgumentOutOfRangeException.ThrowIfNegative(stepCount);
        Optimizer = optimizer;
        StepCount = stepCount;
        Tensors = tensors;
        ParameterSteps = parameterSteps;
    }

    /// <summary>The optimizer that saved it ("AdamW", "SGD").</summary>
    public string Optimizer { get; }

    /// <summary>The number of steps taken.</summary>
    public long StepCount { get; }

    /// <summary>State tensors by name (<c>&lt;buffer&gt;.&lt;parameter name&gt;</c>).</summary>
    public IReadOnlyDictionary<string, Tensor> Tensors { get; }

    /// <summary>Each parameter's own step count (AdamW; a parameter skipped for lack of a gradient falls behind).</summary>
    public IReadOnlyDictionary<string, long> ParameterSteps { get; }

    /// <summary>
    /// Writes the tensors to <paramref name="tensorsPath"/> (safetensors, sorted by name) and the scalars to
    /// <paramref name="jsonPath"/>: <c>{"optimizer": "AdamW", "step_count": 12, "parameter_steps": {"name": 12, ...}}</c>.
    /// </summary>
    /// <param name="tensorsPath">The safetensors file to write.</param>
    /// <param name="jsonPath">The JSON file to write.</param>
    public void Save(string tensorsPath, string jsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(tensorsPath);
        ArgumentException.ThrowIfNullOrEmpty(jsonPath);
        SafeTensorsWriter.Write(tensorsPath, Tensors.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => (t.Key, t.Value.Contiguous())));
        var steps = new JsonObject();
        foreach (var (name, step) in ParameterSteps.OrderBy(s => s.Key, StringComparer.Ordinal))
        {
            steps[name] = step;
        }

        var root = new JsonObject
        {
            ["optimizer"] = Optimizer,
            ["step_count"] = StepCount,
            ["parameter_steps"] = steps,
        };
        File.WriteAllText(jsonPath, root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>Reads what <see cref="Save"/> wrote; the tensors are copied into memory, so no file stays open.</summary>
    /// <param name="tensorsPath">The safetensors file.</param>
    /// <param name="jsonPath">The JSON file.</param>
    /// <returns>The state, ready for <see cref="Optimizer.LoadStateDict"/>.</returns>
    /// <exception cref="InvalidDataException">The JSON lacks a field or has one of the wrong type.</exception>
    /// <exception cref="SafeTensorsException">The safetensors file is missing or invalid.</exception>
    public static OptimizerState Load(string tensorsPath, string jsonPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(tensorsPath);
        ArgumentException.ThrowIfNullOrEmpty(jsonPath);
        string optimizer;
        long stepCount;
        var steps = new Dictionary<string, long>(StringComparer.Ordinal);
        try
        {
            var root = JsonNode.Parse(File.ReadAllText(jsonPath))?.AsObject()
                ?? throw new InvalidDataException($"{jsonPath}: the optimizer state is null; expected an object.");
            optimizer = root["optimizer"]?.GetValue<string>() ?? throw Missing(jsonPath, "optimizer");
            stepCount = root["step_count"]?.GetValue<long>() ?? throw Missing(jsonPath, "step_count");
            var stepsNode = root["parameter_steps"]?.AsObject() ?? throw Missing(jsonPath, "parameter_steps");
            foreach (var (name, value) in stepsNode)
            {
                steps[name] = value?.GetValue<long>() ?? throw Missing(jsonPath, $"parameter_steps.{name}");
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{jsonPath}: not an optimizer state written by OptimizerState.Save ({e.Message}).", e);
        }

        if (stepCount < 0)
        {
            throw new InvalidDataException($"{jsonPath}: step_count is {stepCount}; it cannot be negative.");
        }

        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using (var source = SafeTensorsLoader.Open(tensorsPath))
        {
            foreach (var info in source.Tensors)
            {
                tensors[info.Name] = source.GetTensorAsF32(info.Name).Clone();
            }
        }

        return new OptimizerState(optimizer, stepCount, tensors, steps);
    }

    private static InvalidDataException Missing(string path, string field) =>
        new($"{path}: the optimizer state has no '{field}'; it was not written by OptimizerState.Save.");
}
