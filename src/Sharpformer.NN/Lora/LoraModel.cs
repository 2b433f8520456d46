using System.Text.RegularExpressions;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.NN.Lora;

/// <summary>
/// A model with LoRA adapters in its module tree, as PEFT's get_peft_model builds it: <see cref="Apply"/> attaches an
/// adapter to every targeted Linear (members <c>&lt;path&gt;.lora_A.default.weight</c>, <c>&lt;path&gt;.lora_B.default.weight</c>),
/// freezes everything else except <see cref="LoraConfig.ModulesToSave"/>, and the model trains through autograd and
/// infers on its fused path with the adapters unmerged. <see cref="SaveAdapter"/> writes PEFT's folder
/// (adapter_config.json + adapter_model.safetensors with keys <c>base_model.model.&lt;path&gt;.lora_A.weight</c> and
/// <c>base_model.model.&lt;module to save&gt;.&lt;param&gt;</c>); <see cref="LoadAdapter"/> reads one onto a base model;
/// <see cref="Merge"/> folds the updates into the base weights and <see cref="MergeAndUnload"/> leaves a plain model.
/// </summary>
public sealed class LoraModel
{
    /// <summary>The weights file of an adapter folder.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The prefix PEFT's PeftModel puts before every module path in the saved file.</summary>
    public const string KeyPrefix = "base_model.model.";

    private readonly List<(string Path, LoraAdapter Adapter)> _adapters;
    private readonly List<(string Path, Module Module)> _saved;
    private bool _unloaded;

    private LoraModel(Module model, LoraConfig config, List<(string, LoraAdapter)> adapters, List<(string, Module)> saved)
    {
        Model = model;
        Config = config;
        _adapters = adapters;
        _saved = saved;
    }

    /// <summary>The model the adapters live in (the same object that was passed in).</summary>
    public Module Model { get; }

    /// <summary>The config as applied: modules to save resolved for the task, fan_in_fan_out set for Conv1D targets.</summary>
    public LoraConfig Config { get; }

    /// <summary>Every adapter with the path of the Linear it modifies, in module order.</summary>
    public IReadOnlyList<(string Path, LoraAdapter Adapter)> Adapters => _adapters;

    /// <summary>The paths of the modules trained in full and saved with the adapter (modules_to_save), in module order.</summary>
    public IReadOnlyList<string> SavedModules => _saved.Select(s => s.Path).ToArray();

    /// <summary>True while the adapters are merged into the base weights (<see cref="Merge"/>).</summary>
    public bool IsMerged => _adapters.Count > 0 && _adapters[0].Adapter.IsMerged;

    /// <summary>The parameters that require gradients (adapters and modules to save), with their in-memory paths: hand these to the optimizer.</summary>
    /// <returns>(name, parameter) pairs in <see cref="Module.NamedParameters"/> order.</returns>
    public IReadOnlyList<(string Name, Parameter Parameter)> TrainableParameters() =>
        Model.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToArray();

    /// <summary>Elements of <see cref="TrainableParameters"/> (PEFT's print_trainable_parameters numerator).</summary>
    /// <returns>The count.</returns>
    public long TrainableParameterCount() => TrainableParameters().Sum(p => p.Parameter.Shape.ElementCount);

    /// <summary>
    /// Adds LoRA adapters to <paramref name="model"/> as <paramref name="config"/> says and makes only them and the
    /// modules to save trainable. Target names follow PEFT: a list entry matches a module path equal to it or ending
    /// in "." + it; a regex must match the whole path; modules to save (and everything inside them) are never
    /// adapted; every matched module must be a <see cref="Linear"/> (GPT-2's Conv1D included, which sets
    /// fan_in_fan_out). A is kaiming-uniform from <paramref name="seed"/>, B is zero, so the model's output is unchanged.
    /// </summary>
    /// <param name="model">The base model (F32 to train; any weight type to infer).</param>
    /// <param name="config">The adapter settings.</param>
    /// <param name="seed">Seed of lora_A's initialization and of the adapters' dropout.</param>
    /// <param name="trainable">False leaves every parameter frozen (inference with a loaded adapter).</param>
    /// <returns>The handle.</returns>
    /// <exception cref="ArgumentException">The config is invalid, no module matches the targets, a match is not a Linear, a layer already has an adapter, or a module to save has narrow (F16/BF16) weights while training.</exception>
    public static LoraModel Apply(Module model, LoraConfig config, int seed = 0, bool trainable = true)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        config = config.Resolved();

        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        var saved = FindModulesToSave(modules, config.ModulesToSave);
        var targets = FindTargets(modules, config, saved);
        if (targets.Any(t => t.Linear.Weight.CheckpointLayout == ParameterLayout.Transposed))
        {
            config = config with { FanInFanOut = true };
        }

        if (trainable)
        {
            // Checked before anything changes, so a refused call leaves the model as it was.
            foreach (var (path, module) in saved)
            {
                foreach (var (name, parameter) in module.NamedParameters())
                {
                    if (parameter.DType != DType.F32)
                    {
                        throw new ArgumentException($"LoRA: the module to save {path} holds {name} as {parameter.DType}; training it needs F32 weights. Load the base model in DType.F32.");
                    }
                }
            }
        }

        foreach (var parameter in model.Parameters())
        {
            parameter.RequiresGrad = false;
        }

        var adapters = new List<(string, LoraAdapter)>();
        int index = 0;
        foreach (var (path, linear) in targets)
        {
            // A fixed mix of (seed, adapter index): the same seed gives the same A in every process (HashCode is per-process random).
            int adapterSeed = unchecked((seed * 1_000_003) + (index++ * 7919) + 17);
            var adapter = new LoraAdapter(linear, config.R, config.Scaling, config.LoraDropout, adapterSeed);
            linear.AttachLora(adapter);
            adapter.A.Train(linear.Training);
            adapter.B.Train(linear.Training);
            adapter.Dropout.Train(linear.Training);
            adapters.Add((path, adapter));
            adapter.A.Weight.RequiresGrad = trainable;
            adapter.B.Weight.RequiresGrad = trainable;
        }

        if (trainable)
        {
            foreach (var (_, module) in saved)
            {
                module.SetRequiresGrad(true);
            }
        }

        return new LoraModel(model, config, adapters, saved);
    }

    /// <summary>
    /// Reads a PEFT adapter folder (adapter_config.json + adapter_model.safetensors) onto <paramref name="model"/>, the
    /// base model it was trained from: adapters are attached as in <see cref="Apply"/>, then lora_A, lora_B and the
    /// modules to save are loaded from the file (F16/BF16 tensors are widened). Every expected tensor must be present
    /// with the base model's shapes and nothing else may be in the file; otherwise nothing is loaded and the error
    /// names the tensor, both shapes and the base model the adapter names.
    /// </summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterFolder">The adapter folder.</param>
    /// <param name="trainable">True to continue training (adapters and modules to save require gradients); false freezes everything.</param>
    /// <returns>The handle.</returns>
    /// <exception cref="FileNotFoundException">The folder lacks adapter_config.json or adapter_model.safetensors.</exception>
    /// <exception cref="InvalidDataException">adapter_config.json is invalid or asks for an unsupported option.</exception>
    /// <exception cref="ModelLoadException">The adapter does not fit the base model (targets not found, shapes, missing or unexpected tensors).</exception>
    public static LoraModel LoadAdapter(Module model, string adapterFolder, bool trainable = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(adapterFolder);
        var config = LoraConfig.Load(adapterFolder);
        string weights = Path.Combine(adapterFolder, WeightsFileName);
        if (!File.Exists(weights))
        {
            string hint = File.Exists(Path.Combine(adapterFolder, "adapter_model.bin"))
                ? " It holds adapter_model.bin (a pickle), which is not read: save the adapter with safe_serialization=True."
                : string.Empty;
            throw new FileNotFoundException($"LoRA adapter: {weights} does not exist.{hint}", weights);
        }

        string trainedOn = config.BaseModelNameOrPath is null ? string.Empty : $" (trained on base model {config.BaseModelNameOrPath})";
        LoraModel lora;
        try
        {
            lora = Apply(model, config with { FanInFanOut = false, InferenceMode = !trainable }, seed: 0, trainable: trainable);
        }
        catch (ArgumentException e)
        {
            throw new ModelLoadException($"LoRA adapter {adapterFolder}{trainedOn} does not fit this model: {e.Message}");
        }

        try
        {
            using var source = SafeTensorsLoader.Open(weights);
            lora.LoadWeights(source, $"{weights}{trainedOn}");
        }
        catch
        {
            lora.Unload();
            throw;
        }

        return lora;
    }

    /// <summary>
    /// The adapter's tensors under PEFT's file names: <c>base_model.model.&lt;path&gt;.lora_A.weight</c> [r, In],
    /// <c>…lora_B.weight</c> [Out, r] (the same for Conv1D targets), and each parameter of a module to save under
    /// <c>base_model.model.&lt;path&gt;.&lt;name&gt;</c> in checkpoint layout. Views, not copies.
    /// </summary>
    /// <returns>Name → tensor, adapters first, in module order.</returns>
    public IReadOnlyList<(string Name, Tensor Tensor)> AdapterStateDict()
    {
        ThrowIfUnloaded();
        var entries = new List<(string, Tensor)>();
        foreach (var (path, adapter) in _adapters)
        {
            entries.Add((KeyPrefix + path + ".lora_A.weight", adapter.A.Weight.Value));
            entries.Add((KeyPrefix + path + ".lora_B.weight", adapter.B.Weight.Value));
        }

        foreach (var (path, module) in _saved)
        {
            foreach (var (name, parameter) in module.NamedParameters())
            {
                entries.Add((KeyPrefix + path + "." + name, parameter.ToCheckpoint()));
            }
        }

        return entries;
    }

    /// <summary>
    /// Writes PEFT's adapter folder: adapter_config.json (inference_mode true, as save_pretrained writes it) and
    /// adapter_model.safetensors (<see cref="AdapterStateDict"/>, F32; metadata format pt). The adapters must not be
    /// merged (the saved A and B stand beside the base weights, not inside them).
    /// </summary>
    /// <param name="folder">The folder (created when missing; files in it are replaced).</param>
    /// <param name="baseModelNameOrPath">The base model's Hub id or folder, recorded as base_model_name_or_path.</param>
    /// <exception cref="InvalidOperationException">The adapters are merged or were unloaded.</exception>
    public void SaveAdapter(string folder, string? baseModelNameOrPath = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        ThrowIfUnloaded();
        if (IsMerged)
        {
            throw new InvalidOperationException("LoRA: the adapters are merged into the base weights; call Unmerge() before SaveAdapter, or save the merged model as a plain model folder.");
        }

        Directory.CreateDirectory(folder);
        var config = Config with { BaseModelNameOrPath = baseModelNameOrPath ?? Config.BaseModelNameOrPath, InferenceMode = true };
        config.Save(folder);
        SafeTensorsWriter.Write(
            Path.Combine(folder, WeightsFileName),
            AdapterStateDict().Select(e => (e.Name, e.Tensor.DType == DType.F32 ? e.Tensor.Contiguous() : e.Tensor.To(DType.F32))),
            new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Adds scaling · B·A into every target weight (respecting its layout); forwards then skip the adapters. Idempotent.</summary>
    public void Merge()
    {
        ThrowIfUnloaded();
        foreach (var (_, adapter) in _adapters)
        {
            adapter.Merge();
        }
    }

    /// <summary>Subtracts the merged updates again (to rounding); the adapters are live once more. Idempotent.</summary>
    public void Unmerge()
    {
        ThrowIfUnloaded();
        foreach (var (_, adapter) in _adapters)
        {
            adapter.Unmerge();
        }
    }

    /// <summary>
    /// PEFT's merge_and_unload: merges the adapters and removes them from the module tree, leaving a plain model whose
    /// parameters carry the Hugging Face names (the modules to save keep their trained values). This handle is spent.
    /// </summary>
    /// <returns><see cref="Model"/>, now without adapters.</returns>
    public Module MergeAndUnload()
    {
        Merge();
        return Unload();
    }

    /// <summary>Removes the adapters without merging them (the base weights are as before, or as merged). This handle is spent.</summary>
    /// <returns><see cref="Model"/>, now without adapters.</returns>
    public Module Unload()
    {
        ThrowIfUnloaded();
        foreach (var (_, adapter) in _adapters)
        {
            adapter.Target.DetachLora();
        }

        _unloaded = true;
        return Model;
    }

    /// <summary>Whether module path <paramref name="key"/> is named by <paramref name="names"/> (equal, or ending in "." + name).</summary>
    private static bool MatchesSuffix(IReadOnlyList<string> names, string key) =>
        names.Any(n => key == n || key.EndsWith("." + n, StringComparison.Ordinal));

    private static List<(string Path, Module Module)> FindModulesToSave(List<(string Name, Module Module)> modules, IReadOnlyList<string>? names)
    {
        var saved = new List<(string, Module)>();
        if (names is null)
        {
            return saved;
        }

        foreach (var (path, module) in modules)
        {
            // PEFT wraps a module whose path ends with a listed name (plain string suffix); nothing inside one is wrapped again.
            if (!names.Any(n => path.EndsWith(n, StringComparison.Ordinal)) || saved.Any(s => path.StartsWith(s.Item1 + ".", StringComparison.Ordinal)))
            {
                continue;
            }

            saved.Add((path, module));
        }

        return saved;
    }

    private static List<(string Path, Linear Linear)> FindTargets(List<(string Name, Module Module)> modules, LoraConfig config, List<(string Path, Module Module)> saved)
    {
        IReadOnlyList<string>? names = config.TargetModules;
        if (names is [LoraConfig.AllLinear])
        {
            // PEFT's all-linear: the last name segment of every Linear except the output layer and the modules to save.
            names = modules
                .Where(m => m.Module is Linear && m.Name != "lm_head" && !m.Name.EndsWith(".lm_head", StringComparison.Ordinal) && !InsideSaved(m.Name, saved))
                .Select(m => m.Name[(m.Name.LastIndexOf('.') + 1)..])
                .Distinct(StringComparer.Ordinal)
                .ToArray();
        }

        var regex = config.TargetModulesRegex is null ? null : new Regex(@"\A(?:" + config.TargetModulesRegex + @")\z", RegexOptions.CultureInvariant);
        var targets = new List<(string, Linear)>();
        foreach (var (path, module) in modules)
        {
            bool matched = regex is not null ? regex.IsMatch(path) : MatchesSuffix(names!, path);
            if (!matched || InsideSaved(path, saved) || (config.ExcludeModules is { } exclude && MatchesSuffix(exclude, path)))
            {
                continue;
            }

            if (module is not Linear linear)
            {
                throw new ArgumentException($"LoRA: target module {path} is a {module.GetType().Name}, not a Linear layer; LoRA adapts Linear (and GPT-2 Conv1D) layers only. Narrow target_modules to the Linear layers inside it.");
            }

            if (linear.Lora is not null)
            {
                throw new ArgumentException($"LoRA: {path} already carries an adapter; unload it (LoraModel.Unload) before applying another.");
            }

            targets.Add((path, linear));
        }

        if (targets.Count == 0)
        {
            var linearNames = modules.Where(m => m.Module is Linear).Select(m => m.Name[(m.Name.LastIndexOf('.') + 1)..]).Distinct(StringComparer.Ordinal);
            string wanted = config.TargetModulesRegex is not null ? $"the regex \"{config.TargetModulesRegex}\"" : $"[{string.Join(", ", config.TargetModules!)}]";
            throw new ArgumentException($"LoRA: target_modules {wanted} matches no Linear layer of this model. Its Linear layers are named: {string.Join(", ", linearNames)}.");
        }

        return targets;
    }

    /// <summary>PEFT never adapts a module to save or anything inside it.</summary>
    private static bool InsideSaved(string path, List<(string Path, Module Module)> saved) =>
        saved.Any(s => path == s.Path || path.StartsWith(s.Path + ".", StringComparison.Ordinal));

    /// <summary>Loads lora_A, lora_B and the modules to save from <paramref name="source"/>, after checking every name and shape.</summary>
    private void LoadWeights(ISafeTensorsSource source, string description)
    {
        var expected = new Dictionary<string, Parameter>(StringComparer.Ordinal);
        foreach (var (path, adapter) in _adapters)
        {
            expected[KeyPrefix + path + ".lora_A.weight"] = adapter.A.Weight;
            expected[KeyPrefix + path + ".lora_B.weight"] = adapter.B.Weight;
        }

        foreach (var (path, module) in _saved)
        {
            foreach (var (name, parameter) in module.NamedParameters())
            {
                expected[KeyPrefix + path + "." + name] = parameter;
            }
        }

        var problems = new List<string>();
        var present = new HashSet<string>(StringComparer.Ordinal);
        foreach (var info in source.Tensors)
        {
            present.Add(info.Name);
            if (!expected.TryGetValue(info.Name, out var parameter))
            {
                problems.Add($"unexpected tensor {info.Name} (the base model has no such adapter or module to save)");
                continue;
            }

            var shape = new Shape(info.Shape.Select(d => checked((int)d)).ToArray());
            if (shape != parameter.CheckpointShape)
            {
                problems.Add($"{info.Name} is {shape} in the file but the base model needs {parameter.CheckpointShape} (another base model, or r differs from adapter_config.json's r = {Config.R})");
            }
        }

        problems.AddRange(expected.Keys.Where(k => !present.Contains(k)).Select(k => $"missing tensor {k}"));
        if (problems.Count > 0)
        {
            const int Shown = 6;
            string more = problems.Count > Shown ? $"; and {problems.Count - Shown} more" : string.Empty;
            throw new ModelLoadException($"LoRA adapter {description} does not fit this model: {string.Join("; ", problems.Take(Shown))}{more}.");
        }

        foreach (var (name, parameter) in expected)
        {
            var tensor = source.GetTensorAsF32(name);
            parameter.LoadFromCheckpoint(parameter.DType == DType.F32 ? tensor : tensor.To(parameter.DType));
        }
    }

    private void ThrowIfUnloaded()
    {
        if (_unloaded)
        {
            throw new InvalidOperationException("LoRA: the adapters were unloaded from the model (MergeAndUnload or Unload); apply or load them again.");
        }
    }
}
