using System.Text.Json;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Tensors;

namespace Sharpformer.Training.Tests.Reference;

/// <summary>A tensor of a reference fixture by its Hugging Face name, in HF layout (Conv1D weights [in, out]).</summary>
/// <param name="Name">The HF parameter name.</param>
/// <param name="Shape">The HF shape.</param>
/// <param name="Data">The elements, row-major.</param>
internal sealed record ReferenceTensor(string Name, int[] Shape, float[] Data);

/// <summary>One optimizer step of the PyTorch run.</summary>
/// <param name="Step">0-based step index.</param>
/// <param name="Loss">The loss of the step's batch before the update.</param>
/// <param name="Lr">The learning rate the update used (the schedule's value at this step; 0 at step 0 with warmup).</param>
/// <param name="GradNorm">The global L2 norm of the gradients before clipping.</param>
/// <param name="Blocks">CLM: the block indices of the batch rows (<c>[2k mod N, (2k+1) mod N]</c>); empty for MLM.</param>
/// <param name="Batch">MLM: the index into <see cref="ReferenceFixture.Batches"/>; −1 for CLM.</param>
internal sealed record ReferenceStep(int Step, float Loss, float Lr, float GradNorm, int[] Blocks, int Batch);

/// <summary>A fixed MLM batch of the BERT fixture: [B, T] I32 tensors as a collator would hand them to the model.</summary>
/// <param name="Texts">The sentences the rows were tokenized from (one per row).</param>
/// <param name="InputIds">[B, T] ids with the masking applied.</param>
/// <param name="AttentionMask">[B, T] 1 = token, 0 = padding.</param>
/// <param name="TokenTypeIds">[B, T] segment ids (all 0).</param>
/// <param name="Labels">[B, T] the original id at masked positions, −100 elsewhere.</param>
internal sealed record ReferenceBatch(string[] Texts, Tensor InputIds, Tensor AttentionMask, Tensor TokenTypeIds, Tensor Labels);

/// <summary>A flat element range (HF layout) whose exact gradient is 0: see <see cref="ReferenceFixture.ZeroGradient"/>.</summary>
/// <param name="Name">The HF parameter name.</param>
/// <param name="Start">First flat index.</param>
/// <param name="Count">Number of elements.</param>
internal sealed record ZeroGradientSlice(string Name, int Start, int Count);

/// <summary>The optimizer and schedule settings of the PyTorch run (HF Trainer defaults where not named).</summary>
/// <param name="Steps">Optimizer steps.</param>
/// <param name="Lr">Base learning rate.</param>
/// <param name="LrSchedule">HF schedule name ("linear").</param>
/// <param name="WarmupSteps">Linear warmup steps.</param>
/// <param name="WeightDecay">AdamW decoupled weight decay of the decay group.</param>
/// <param name="MaxGradNorm">Global-norm clipping threshold.</param>
/// <param name="Beta1">Adam β1.</param>
/// <param name="Beta2">Adam β2.</param>
/// <param name="Eps">Adam ε.</param>
internal sealed record ReferenceRunSettings(int Steps, float Lr, string LrSchedule, int WarmupSteps, float WeightDecay, float MaxGradNorm, float Beta1, float Beta2, float Eps);

/// <summary>
/// Reads a training reference fixture made by PyTorch (tests/fixtures/train_bert or train_gpt2, see make_fixture.py
/// there for the schema): the HF model folder, the step-0 loss and gradients, the 10-step AdamW run (per-step loss,
/// lr, grad norm; the final weights) and the batches or token stream it used. Tensors come from the safetensors files
/// that expected.json names, by HF name and in HF layout.
/// </summary>
internal sealed class ReferenceFixture
{
    private readonly Lazy<IReadOnlyDictionary<string, ReferenceTensor>> _initial;
    private readonly Lazy<IReadOnlyDictionary<string, ReferenceTensor>> _grads;
    private readonly Lazy<IReadOnlyDictionary<string, ReferenceTensor>> _final;
    private readonly HashSet<string> _conv1D;
    private readonly HashSet<string> _noDecay;

    private ReferenceFixture(string folder)
    {
        Folder = folder;
        string path = Path.Combine(folder, "expected.json");
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"No expected.json in '{folder}'; regenerate the fixture with /usr/bin/python3 tests/fixtures/{Path.GetFileName(folder)}/make_fixture.py and check the test project copies it.", path);
        }

        using (var doc = JsonDocument.Parse(File.ReadAllText(path)))
        {
            Root = doc.RootElement.Clone();
        }

        ParameterNames = [.. Root.GetProperty("parameters").EnumerateArray().Select(e => e.GetString()!)];
        Shapes = Root.GetProperty("shapes").EnumerateObject().ToDictionary(p => p.Name, p => Ints(p.Value), StringComparer.Ordinal);
        _conv1D = new HashSet<string>(Root.GetProperty("conv1d").EnumerateArray().Select(e => e.GetString()!), StringComparer.Ordinal);
        _noDecay = new HashSet<string>(Root.GetProperty("no_decay").EnumerateArray().Select(e => e.GetString()!), StringComparer.Ordinal);
        ZeroGradient = [.. Root.GetProperty("zero_gradient").EnumerateArray().Select(e =>
            new ZeroGradientSlice(e.GetProperty("name").GetString()!, e.GetProperty("start").GetInt32(), e.GetProperty("count").GetInt32()))];
        ZeroGradientBound = Root.GetProperty("zero_gradient_bound").GetSingle();

        var step0 = Root.GetProperty("step0");
        Step0Loss = step0.GetProperty("loss").GetSingle();
        var run = Root.GetProperty("run");
        Run = new ReferenceRunSettings(
            run.GetProperty("steps").GetInt32(),
            run.GetProperty("lr").GetSingle(),
            run.GetProperty("lr_schedule").GetString()!,
            run.GetProperty("warmup_steps").GetInt32(),
            run.GetProperty("weight_decay").GetSingle(),
            run.GetProperty("max_grad_norm").GetSingle(),
            run.GetProperty("betas")[0].GetSingle(),
            run.GetProperty("betas")[1].GetSingle(),
            run.GetProperty("eps").GetSingle());
        Steps = [.. run.GetProperty("steps_detail").EnumerateArray().Select(s => new ReferenceStep(
            s.GetProperty("step").GetInt32(),
            s.GetProperty("loss").GetSingle(),
            s.GetProperty("lr").GetSingle(),
            s.GetProperty("grad_norm").GetSingle(),
            s.TryGetProperty("blocks", out var blocks) ? Ints(blocks) : [],
            s.TryGetProperty("batch", out var batch) ? batch.GetInt32() : -1))];

        Batches = Root.TryGetProperty("batches", out var batches)
            ? [.. batches.EnumerateArray().Select(ReadBatch)]
            : [];
        _initial = new(() => ReadTensors("model.safetensors"));
        _grads = new(() => ReadTensors(step0.GetProperty("grads").GetString()!));
        _final = new(() => ReadTensors(run.GetProperty("final").GetString()!));
    }

    /// <summary>The fixture folder (an HF model folder our loaders read).</summary>
    public string Folder { get; }

    /// <summary>expected.json, for anything the typed members do not cover.</summary>
    public JsonElement Root { get; }

    /// <summary>Every parameter's HF name in HF <c>named_parameters()</c> order (tied weights once).</summary>
    public IReadOnlyList<string> ParameterNames { get; }

    /// <summary>Each parameter's HF shape.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    /// <summary>The step-0 loss.</summary>
    public float Step0Loss { get; }

    /// <summary>The run's optimizer and schedule settings.</summary>
    public ReferenceRunSettings Run { get; }

    /// <summary>The run's steps, in order.</summary>
    public IReadOnlyList<ReferenceStep> Steps { get; }

    /// <summary>MLM fixture: the fixed batches (step 0 uses <see cref="Step0Batch"/>, run step k uses <see cref="ReferenceStep.Batch"/>); empty for CLM.</summary>
    public IReadOnlyList<ReferenceBatch> Batches { get; }

    /// <summary>MLM fixture: the batch of the step-0 gradients.</summary>
    public ReferenceBatch Step0Batch => Batches.Count > 0
        ? Batches[Root.GetProperty("step0").GetProperty("batch").GetInt32()]
        : throw new InvalidOperationException($"{Folder}: a CLM fixture has no MLM batches; use Step0InputIds.");

    /// <summary>CLM fixture: the step-0 input ids [B, T] (labels are the same ids).</summary>
    public Tensor Step0InputIds
    {
        get
        {
            var rows = Root.GetProperty("step0").GetProperty("input_ids").EnumerateArray().Select(Ints).ToArray();
            return Tensor.FromArray(rows.SelectMany(r => r).ToArray(), new Shape(rows.Length, rows[0].Length));
        }
    }

    /// <summary>
    /// CLM fixture: the input ids [B, T] of run step <paramref name="step"/>: rows are the blocks
    /// <see cref="ReferenceStep.Blocks"/> (block i = tokens [i·T, (i+1)·T) of <see cref="TokenStream"/>); labels = the same ids.
    /// </summary>
    /// <param name="step">0-based run step.</param>
    /// <returns>The batch's ids as an I32 tensor.</returns>
    public Tensor ClmBatch(int step)
    {
        var blocks = Steps[step].Blocks;
        if (blocks.Length == 0)
        {
            throw new InvalidOperationException($"{Folder}: an MLM fixture has no token blocks; use Batches[Steps[{step}].Batch].");
        }

        int t = Root.GetProperty("run").GetProperty("block_size").GetInt32();
        var stream = TokenStream;
        var ids = new int[blocks.Length * t];
        for (int row = 0; row < blocks.Length; row++)
        {
            Array.Copy(stream, blocks[row] * t, ids, row * t, t);
        }

        return Tensor.FromArray(ids, new Shape(blocks.Length, t));
    }

    /// <summary>CLM fixture: the whole token stream of corpus.txt (EOS included at the end).</summary>
    public int[] TokenStream => Ints(Root.GetProperty("run").GetProperty("token_stream"));

    /// <summary>CLM fixture: the training text file.</summary>
    public string CorpusPath => Path.Combine(Folder, "corpus.txt");

    /// <summary>Element ranges whose exact gradient is 0 (key biases: softmax is blind to a shift shared by a query's scores).</summary>
    public IReadOnlyList<ZeroGradientSlice> ZeroGradient { get; }

    /// <summary>The most AdamW can move a parameter without weight decay over the run (for the zero-gradient elements).</summary>
    public float ZeroGradientBound { get; }

    /// <summary>The initial weights (model.safetensors) by HF name.</summary>
    public IReadOnlyDictionary<string, ReferenceTensor> InitialWeights => _initial.Value;

    /// <summary>The step-0 gradient of every parameter by HF name (a tied weight's gradient holds both uses).</summary>
    public IReadOnlyDictionary<string, ReferenceTensor> Step0Gradients => _grads.Value;

    /// <summary>Every parameter after the run, by HF name.</summary>
    public IReadOnlyDictionary<string, ReferenceTensor> FinalWeights => _final.Value;

    /// <summary>Opens <c>fixtures/<paramref name="name"/></c> in the test output folder ("train_bert" or "train_gpt2").</summary>
    /// <param name="name">The fixture folder name.</param>
    /// <returns>The fixture.</returns>
    public static ReferenceFixture Load(string name) => new(Path.Combine(AppContext.BaseDirectory, "fixtures", name));

    /// <summary>True for HF Conv1D weights (stored [in, out]).</summary>
    /// <param name="name">The HF parameter name.</param>
    /// <returns>Whether the reference tensor is [in, out].</returns>
    public bool IsConv1D(string name) => _conv1D.Contains(name);

    /// <summary>True for the parameters of the weight-decay-0 group (biases, LayerNorm).</summary>
    /// <param name="name">The HF parameter name.</param>
    /// <returns>Whether HF Trainer exempts it from weight decay.</returns>
    public bool IsNoDecay(string name) => _noDecay.Contains(name);

    /// <summary>
    /// CLM fixture: the CLI arguments of the run (<c>train clm --model ... --no-shuffle --seed 0</c>) with the model
    /// folder and the data file filled in.
    /// </summary>
    /// <param name="modelFolder">The model folder to train (a copy of <see cref="Folder"/>).</param>
    /// <param name="dataPath">The text file (a copy of <see cref="CorpusPath"/>).</param>
    /// <returns>The argument list.</returns>
    public string[] CliArgs(string modelFolder, string dataPath) =>
        [.. Root.GetProperty("run").GetProperty("cli_args").EnumerateArray()
            .Select(e => e.GetString()!.Replace("{model}", modelFolder, StringComparison.Ordinal).Replace("{data}", dataPath, StringComparison.Ordinal))];

    /// <summary>The largest step-0 gradient element over the whole model: the scale of a tensor whose exact gradient is 0.</summary>
    /// <returns>max |g| over every step-0 gradient.</returns>
    public float GradientScale() => Step0Gradients.Values.Max(t => t.Data.Max(MathF.Abs));

    /// <summary>
    /// Compares one parameter's step-0 gradient with PyTorch's (<see cref="ReferenceCompare.AssertClose(string, ReadOnlySpan{float}, ReferenceTensor, bool, float)"/>); a tensor
    /// whose exact gradient is 0 everywhere (a BERT key bias) is measured against <see cref="GradientScale"/> instead
    /// of its own rounding noise.
    /// </summary>
    /// <param name="name">The HF parameter name.</param>
    /// <param name="actual">Our gradient, in our layout.</param>
    /// <param name="transposedConv1D">True when ours is [out, in] for an HF Conv1D weight stored [in, out].</param>
    /// <returns>The relative error measured (for reports).</returns>
    public float AssertGradient(string name, ReadOnlySpan<float> actual, bool transposedConv1D = false)
    {
        var expected = Get(Step0Gradients, name, "step-0 gradients");
        bool allZero = ZeroGradient.Any(z => z.Name == name && z.Start == 0 && z.Count == expected.Data.Length);
        return ReferenceCompare.AssertClose($"grad {name}", actual, expected, transposedConv1D, allZero ? GradientScale() : 0f);
    }

    /// <summary>
    /// Compares one parameter after the run with PyTorch's. Elements of <see cref="ZeroGradient"/> are driven by
    /// rounding noise through Adam's normalisation, so they are checked against their initial value within
    /// <see cref="ZeroGradientBound"/>; the rest of the tensor with <see cref="ReferenceCompare.AssertClose(string, ReadOnlySpan{float}, ReferenceTensor, bool, float)"/>.
    /// </summary>
    /// <param name="name">The HF parameter name.</param>
    /// <param name="actual">Our parameter value, in our layout.</param>
    /// <param name="transposedConv1D">True when ours is [out, in] for an HF Conv1D weight stored [in, out].</param>
    /// <returns>The relative error measured outside the zero-gradient elements (for reports).</returns>
    public float AssertFinalWeight(string name, ReadOnlySpan<float> actual, bool transposedConv1D = false)
    {
        var expected = Get(FinalWeights, name, "final weights");
        var slices = ZeroGradient.Where(z => z.Name == name).ToList();
        if (slices.Count == 0)
        {
            return ReferenceCompare.AssertClose($"final {name}", actual, expected, transposedConv1D);
        }

        // Zero-gradient slices are 1-D bias ranges; layout questions do not arise for them.
        Assert.False(transposedConv1D, $"final {name}: zero-gradient slices are defined on biases, not on transposed weights.");
        var initial = Get(InitialWeights, name, "initial weights");
        var noisy = new bool[expected.Data.Length];
        var actualRest = actual.ToArray();
        var expectedRest = (float[])expected.Data.Clone();
        foreach (var slice in slices)
        {
            for (int i = slice.Start; i < slice.Start + slice.Count; i++)
            {
                noisy[i] = true;
                float moved = Math.Abs(actual[i] - initial.Data[i]);
                Assert.True(moved <= ZeroGradientBound,
                    $"final {name}[{i}]: its exact gradient is 0, so AdamW can move it at most {ZeroGradientBound:G4} in this run, but it moved {moved:G4} (from {initial.Data[i]:G9} to {actual[i]:G9}).");

                // Compared by the bound above; take them out of the relative comparison.
                actualRest[i] = 0f;
                expectedRest[i] = 0f;
            }
        }

        return noisy.Any(n => !n)
            ? ReferenceCompare.AssertClose($"final {name} (outside its zero-gradient elements)", actualRest, expected with { Data = expectedRest }, transposedConv1D: false)
            : 0f;
    }

    private static ReferenceTensor Get(IReadOnlyDictionary<string, ReferenceTensor> tensors, string name, string what) =>
        tensors.TryGetValue(name, out var tensor)
            ? tensor
            : throw new KeyNotFoundException($"The reference {what} have no tensor '{name}' (they have {tensors.Count}, e.g. '{tensors.Keys.First()}'); our parameter names must be the HF names.");

    private Dictionary<string, ReferenceTensor> ReadTensors(string file)
    {
        using var source = SafeTensorsFile.Open(Path.Combine(Folder, file));
        var tensors = new Dictionary<string, ReferenceTensor>(StringComparer.Ordinal);
        foreach (var info in source.Tensors)
        {
            var tensor = source.GetTensorAsF32(info.Name);
            tensors[info.Name] = new ReferenceTensor(info.Name, tensor.Shape.Dims.ToArray(), tensor.ToArray());
        }

        return tensors;
    }

    private static ReferenceBatch ReadBatch(JsonElement e)
    {
        static Tensor Matrix(JsonElement rows)
        {
            var data = rows.EnumerateArray().Select(Ints).ToArray();
            return Tensor.FromArray(data.SelectMany(r => r).ToArray(), new Shape(data.Length, data[0].Length));
        }

        return new ReferenceBatch(
            [.. e.GetProperty("texts").EnumerateArray().Select(t => t.GetString()!)],
            Matrix(e.GetProperty("input_ids")),
            Matrix(e.GetProperty("attention_mask")),
            Matrix(e.GetProperty("token_type_ids")),
            Matrix(e.GetProperty("labels")));
    }

    private static int[] Ints(JsonElement e) => [.. e.EnumerateArray().Select(x => x.GetInt32())];
}
