using System.Diagnostics;
using System.Globalization;
using Sharpformer.IO.Config;
using Sharpformer.Models.Bert;
using Sharpformer.NN.Lora;
using Sharpformer.Tensors;
using Sharpformer.Training.Optim;

namespace Sharpformer.Benchmarks;

/// <summary>
/// The memory of a LoRA fine-tune next to full fine-tuning, one mode per process (the peak working set is the
/// process's): a BERT-base-shaped random BertForSequenceClassification (12 layers, C 768, 12 heads, FFN 3072, vocab
/// 30522), AdamW, a few training steps on random token ids. Prints parameters, trainable parameters, gradient and
/// optimizer-state bytes (from the tensors themselves) and the peak working set after model creation and after the
/// steps. <c>dotnet run -c Release --project benchmarks/Sharpformer.Benchmarks -- lora-memory lora|full [steps] [batch] [tokens]</c>.
/// LoRA: r 8, alpha 16, dropout 0.1 on query and value, classifier trained (PEFT's SEQ_CLS defaults).
/// </summary>
internal static class LoraMemoryHarness
{
    private const string BertBase = """
        { "model_type": "bert", "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
          "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2, "hidden_dropout_prob": 0.1,
          "attention_probs_dropout_prob": 0.1, "id2label": { "0": "NEG", "1": "POS" }, "label2id": { "NEG": 0, "POS": 1 } }
        """;

    public static void Run(string mode, int steps, int batch, int tokens)
    {
        if (mode is not ("lora" or "full"))
        {
            throw new ArgumentException($"lora-memory: the mode is 'lora' or 'full', got '{mode}'.");
        }

        var model = BertForSequenceClassification.FromConfig((BertConfig)ModelConfig.Parse(BertBase), seed: 1);
        long parameters = model.ParameterCount();
        if (mode == "lora")
        {
            LoraModel.Apply(model, new LoraConfig { R = 8, LoraAlpha = 16, LoraDropout = 0.1f, TargetModules = ["query", "value"], TaskType = "SEQ_CLS" }, seed: 1);
        }

        model.Train();
        var group = ParameterGroup.Trainable(model, 1e-4, weightDecay: 0.01);
        var optimizer = new AdamW([group]);
        long trainable = group.Parameters.Sum(p => p.Parameter.Shape.ElementCount);
        using var process = Process.GetCurrentProcess();
        process.Refresh();
        long peakAfterModel = process.PeakWorkingSet64;

        var random = new Random(3);
        var ids = Tensor.FromArray(Enumerable.Range(0, batch * tokens).Select(_ => random.Next(1000, 30000)).ToArray(), new Shape(batch, tokens));
        var mask = Tensor.FromArray(Enumerable.Repeat(1, batch * tokens).ToArray(), new Shape(batch, tokens));
        var labels = Tensor.FromArray(Enumerable.Range(0, batch).Select(i => i % 2).ToArray(), new Shape(batch));
        var clock = Stopwatch.StartNew();
        long gradientBytes = 0;
        float loss = 0;
        long peak = 0, withTape = 0, steady = 0;
        for (int step = 0; step < steps; step++)
        {
            bool last = step == steps - 1;
            if (last)
            {
                // The peak so far is the runtime's own (the GC collects when it likes); the last step then measures
                // the live heap at the two points that matter, after full collections: with the tape alive (weights,
                // activations) and after the update, the graph gone (gradients, optimizer state, managed weights).
                process.Refresh();
                peak = process.PeakWorkingSet64;
            }

            (loss, gradientBytes) = Step(model, optimizer, group, ids, mask, labels, last ? () => withTape = LiveManagedBytes() : null);
            if (last) steady = LiveManagedBytes();
        }

        double secondsPerStep = clock.Elapsed.TotalSeconds / steps;
        long stateBytes = optimizer.StateDict().Tensors.Values.Sum(t => t.ElementCount * 4L);
        var c = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(c, $"mode={mode} model=bert-base-shaped(110M) batch={batch} tokens={tokens} steps={steps} last_loss={loss:F4}"));
        Console.WriteLine(string.Create(c, $"  parameters            {parameters,14:N0}"));
        Console.WriteLine(string.Create(c, $"  trainable parameters  {trainable,14:N0}  ({100.0 * trainable / parameters:F3} %)"));
        Console.WriteLine(string.Create(c, $"  gradient bytes        {gradientBytes,14:N0}  ({gradientBytes / 1048576.0:F1} MiB)"));
        Console.WriteLine(string.Create(c, $"  optimizer state bytes {stateBytes,14:N0}  ({stateBytes / 1048576.0:F1} MiB)"));
        Console.WriteLine(string.Create(c, $"  peak working set      after model {peakAfterModel / 1048576.0:F0} MiB, over {steps - 1} steps {peak / 1048576.0:F0} MiB (default GC)"));
        Console.WriteLine(string.Create(c, $"  live managed heap     tape alive {withTape / 1048576.0:F0} MiB, after the update {steady / 1048576.0:F0} MiB (after full collections)"));
        Console.WriteLine(string.Create(c, $"  seconds per step      {secondsPerStep:F2} (not a speed claim: shared CPU)"));
    }

    /// <summary>One training step; the graph is unreachable once it returns. <paramref name="afterForward"/> runs with the tape alive.</summary>
    private static (float Loss, long GradientBytes) Step(BertForSequenceClassification model, AdamW optimizer, ParameterGroup group, Tensor ids, Tensor mask, Tensor labels, Action? afterForward)
    {
        optimizer.ZeroGrad();
        var value = model.ClassificationLoss(ids, mask, null, labels);
        afterForward?.Invoke();
        value.Backward();
        long gradientBytes = group.Parameters.Sum(p => p.Parameter.Value.Grad is { } g ? g.ElementCount * 4L : 0L);
        optimizer.Step();
        return (value.ToArray()[0], gradientBytes);
    }

    /// <summary>Bytes the GC holds live after full collections (tensors are managed arrays; 64-byte-aligned parameter buffers may live outside it).</summary>
    private static long LiveManagedBytes()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        return GC.GetTotalMemory(forceFullCollection: true);
    }
}
