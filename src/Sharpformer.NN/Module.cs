using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.NN;

/// <summary>
/// Base of every layer and model: named child modules and parameters whose dotted paths equal the checkpoint tensor
/// names (<c>encoder.layer.3.attention.self.query.weight</c>), a training/evaluation mode, and state-dict load/save.
/// Subclasses register children and parameters in their constructor, in checkpoint order.
/// </summary>
public abstract class Module
{
    private readonly List<(string Name, Module Module)> _children = [];
    private readonly List<(string Name, Parameter Parameter)> _parameters = [];

    /// <summary>True in training mode (dropout active), false in evaluation mode. New modules start in training mode, as in PyTorch.</summary>
    public bool Training { get; private set; } = true;

    /// <summary>Direct children with their names, in registration order.</summary>
    public IEnumerable<(string Name, Module Module)> NamedChildren() => _children;

    /// <summary>This module (name "") and every descendant with its dotted path.</summary>
    public IEnumerable<(string Name, Module Module)> NamedModules()
    {
        yield return (string.Empty, this);
        foreach (var (name, child) in _children)
        {
            foreach (var (sub, module) in child.NamedModules())
            {
                yield return (sub.Length == 0 ? name : name + "." + sub, module);
            }
        }
    }

    /// <summary>
    /// Every parameter with its full dotted path (the checkpoint tensor name), depth first in registration order.
    /// A parameter shared by two modules (tied weights) is listed once, under its first path, as PyTorch does.
    /// </summary>
    public IEnumerable<(string Name, Parameter Parameter)> NamedParameters()
    {
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (prefix, module) in NamedModules())
        {
            foreach (var (name, parameter) in module._parameters)
            {
                if (seen.Add(parameter))
                {
                    yield return (prefix.Length == 0 ? name : prefix + "." + name, parameter);
                }
            }
        }
    }

    /// <summary>The parameters of <see cref="NamedParameters"/> without names (for optimizers).</summary>
    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(p => p.Parameter);

    /// <summary>Total number of parameter elements (tied weights counted once).</summary>
    public long ParameterCount() => Parameters().Sum(p => p.Shape.ElementCount);

    /// <summary>Sets training mode on this module and all descendants.</summary>
    /// <param name="mode">True for training, false for evaluation.</param>
    /// <returns>This module.</returns>
    public Module Train(bool mode = true)
    {
        foreach (var (_, module) in NamedModules())
        {
            module.Training = mode;
        }

        return this;
    }

    /// <summary>Sets evaluation mode (dropout off) on this module and all descendants.</summary>
    /// <returns>This module.</returns>
    public Module Eval() => Train(false);

    /// <summary>Turns gradient tracking on or off for every parameter (false freezes the module).</summary>
    /// <param name="requiresGrad">The new flag.</param>
    public void SetRequiresGrad(bool requiresGrad)
    {
        foreach (var parameter in Parameters())
        {
            parameter.RequiresGrad = requiresGrad;
        }
    }

    /// <summary>
    /// Name → current value of every parameter (<see cref="NamedParameters"/> order, tied weights once), in checkpoint
    /// layout: a parameter stored transposed (<see cref="ParameterLayout.Transposed"/>, HF's Conv1D) appears as a
    /// transposed view of its value ([In, Out]), exactly as a Hugging Face state dict holds it. No data is copied.
    /// </summary>
    /// <returns>The state dict.</returns>
    public IReadOnlyDictionary<string, Tensor> StateDict()
    {
        var dict = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, parameter) in NamedParameters())
        {
            dict[name] = parameter.ToCheckpoint();
        }

        return dict;
    }

    /// <summary>
    /// Copies parameter values from <paramref name="stateDict"/> by name into the parameters' own buffers (checkpoint
    /// layout as in <see cref="StateDict"/>: a transposed parameter is read [In, Out]; values are converted to each
    /// parameter's dtype). A name under which a tied parameter is also reachable (GPT-2's <c>lm_head.weight</c>) is
    /// accepted and not read. With <paramref name="strict"/>, a missing or unexpected name throws; otherwise they are only reported.
    /// </summary>
    /// <param name="stateDict">Name → tensor.</param>
    /// <param name="strict">Throw on missing or unexpected names.</param>
    /// <returns>What was loaded, missing and unused.</returns>
    /// <exception cref="ModelLoadException">A shape or dtype differs, or (strict) a name is missing or unexpected.</exception>
    public LoadReport LoadStateDict(IReadOnlyDictionary<string, Tensor> stateDict, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(stateDict);
        return LoadFrom(VarStore.FromTensors(stateDict, "state dict"), strict);
    }

    /// <summary>As <see cref="LoadStateDict(IReadOnlyDictionary{string, Tensor}, bool)"/>, reading from a safetensors source.</summary>
    /// <param name="source">The checkpoint.</param>
    /// <param name="strict">Throw on missing or unexpected names.</param>
    /// <returns>What was loaded, missing and unused.</returns>
    /// <exception cref="ModelLoadException">A shape or dtype differs, or (strict) a name is missing or unexpected.</exception>
    public LoadReport LoadStateDict(ISafeTensorsSource source, bool strict = true)
    {
        ArgumentNullException.ThrowIfNull(source);
        return LoadFrom(VarStore.FromSafeTensors(source), strict);
    }

    /// <summary>
    /// Writes every parameter to one safetensors file under its dotted name, in checkpoint layout and in its dtype
    /// (<see cref="StateDict"/>: tied weights once, HF Conv1D weights [In, Out]), so the file loads in Hugging Face.
    /// </summary>
    /// <param name="path">The file to write.</param>
    /// <param name="metadata">Optional <c>__metadata__</c> entries (HF writes <c>format: pt</c>).</param>
    public void SaveSafetensors(string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        SafeTensorsWriter.Write(path, NamedParameters().Select(p => (p.Name, p.Parameter.ToCheckpoint().Contiguous())), metadata);
    }

    /// <summary>Registers <paramref name="module"/> as the child <paramref name="name"/> (one path segment, or "layer.3").</summary>
    /// <typeparam name="T">The module type.</typeparam>
    /// <param name="name">Its name under this module.</param>
    /// <param name="module">The child.</param>
    /// <returns><paramref name="module"/>.</returns>
    protected T RegisterModule<T>(string name, T module)
        where T : Module
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(module);
        _children.Add((name, module));
        return module;
    }

    /// <summary>Removes the child registered as <paramref name="name"/> (an adapter being unloaded); no-op when there is none.</summary>
    /// <param name="name">Its name under this module.</param>
    /// <returns>True when a child was removed.</returns>
    protected bool UnregisterModule(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        int index = _children.FindIndex(c => c.Name == name);
        if (index < 0)
        {
            return false;
        }

        _children.RemoveAt(index);
        return true;
    }

    /// <summary>Registers <paramref name="parameter"/> under <paramref name="name"/>.</summary>
    /// <param name="name">Its name under this module (e.g. "weight").</param>
    /// <param name="parameter">The parameter.</param>
    /// <returns><paramref name="parameter"/>.</returns>
    protected Parameter RegisterParameter(string name, Parameter parameter)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(parameter);
        _parameters.Add((name, parameter));
        return parameter;
    }

    /// <summary>Every (path, parameter) pair, tied parameters under each of their paths (first path first).</summary>
    private IEnumerable<(string Name, Parameter Parameter)> AllParameterPaths()
    {
        foreach (var (prefix, module) in NamedModules())
        {
            foreach (var (name, parameter) in module._parameters)
            {
                yield return (prefix.Length == 0 ? name : prefix + "." + name, parameter);
            }
        }
    }

    private LoadReport LoadFrom(VarStore store, bool strict)
    {
        var missing = new List<string>();
        var loaded = new List<string>();
        var seen = new HashSet<Parameter>(ReferenceEqualityComparer.Instance);
        foreach (var (name, parameter) in AllParameterPaths())
        {
            if (!seen.Add(parameter))
            {
                // A second path of a tied parameter: a checkpoint copy under it is accepted, not read.
                if (store.Contains(name))
                {
                    store.Used.Add(name);
                }

                continue;
            }

            if (!store.Contains(name))
            {
                missing.Add(name);
                continue;
            }

            parameter.LoadFromCheckpoint(store.Fetch(name, parameter.CheckpointShape, parameter.DType));
            loaded.Add(name);
        }

        var report = new LoadReport(loaded, missing, store.Unused(), store.Converted);
        if (strict && (missing.Count > 0 || report.Unused.Count > 0))
        {
            throw new ModelLoadException($"LoadStateDict from {store.Description}: {report.Describe()}; pass strict: false to load anyway.");
        }

        return report;
    }
}
