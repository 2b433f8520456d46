using System.CommandLine;
using System.Globalization;
using Sharpformer.Generation;
using Sharpformer.IO.Config;
using Sharpformer.IO.Hub;
using Sharpformer.IO.SafeTensors;
using Sharpformer.Models;
using Sharpformer.Models.Llama;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Tensors;
using Sharpformer.Text;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer generate "prompt" [--model gpt2] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
/// [--seed S] [--beams N] [--dtype f32|f16|bf16] [--kv-cache f16|f32] [--stats]</c>: continues the prompt with a causal LM (a folder, a Hub
/// repo or a .gguf file), streaming the text to the console; <c>--stats</c> reports prefill and decode tokens/s.
/// </summary>
internal static class GenerateCommand
{
    private const string FolderHint = "when offline, pass --model <folder> with config.json, model.safetensors and the tokenizer files.";

    public static Command Create()
    {
        var prompt = new Argument<string>("prompt") { Description = "The text to continue." };
        var model = new Option<string>("--model")
        {
            Description = "Hub repo id, local folder (config.json, model.safetensors, vocab.json + merges.txt or tokenizer.json), or a llama.cpp .gguf file (llama, qwen2, phi3; F32/F16/BF16).",
            DefaultValueFactory = _ => "gpt2",
        };
        var maxNewTokens = new Option<int>("--max-new-tokens") { Description = "Tokens to generate at most.", DefaultValueFactory = _ => 50 };
        var temperature = new Option<float?>("--temperature") { Description = "Sample with this temperature (> 0); 0 means greedy. Sampling is on when any of --temperature, --top-k, --top-p, --seed is given." };
        var topK = new Option<int?>("--top-k") { Description = "Sample from the K most likely tokens (0 = no limit; default 50, as in HF)." };
        var topP = new Option<float?>("--top-p") { Description = "Sample from the smallest set of tokens whose probability reaches P (0 < P ≤ 1)." };
        var seed = new Option<int?>("--seed") { Description = "Seed for reproducible sampling." };
        var beams = new Option<int>("--beams") { Description = "Beam search with this many beams (prints the result at the end).", DefaultValueFactory = _ => 1 };
        var dtype = new Option<string>("--dtype")
        {
            Description = "Type the weight matrices are kept in: f32, f16 or bf16 (half the memory and the bytes each token reads; norms, biases and all sums stay f32).",
            DefaultValueFactory = _ => "f32",
        };
        dtype.AcceptOnlyFromAmong("f32", "f16", "bf16");
        var stats = new Option<bool>("--stats") { Description = "After the text, print prefill and decode tokens/s to standard error." };
        var kvCache = KvCacheOption();
        var command = new Command("generate", "Continue a prompt with a causal LM (GPT-2, Llama, Mistral, Qwen2, Phi-3; greedy, sampling or beam search), streaming the text.")
        {
            prompt, model, maxNewTokens, temperature, topK, topP, seed, beams, dtype, stats, kvCache,
        };
        command.SetAction((parse, ct) =>
        {
            var t = parse.GetValue(temperature);
            var k = parse.GetValue(topK);
            var p = parse.GetValue(topP);
            var s = parse.GetValue(seed);
            if (FlagError(parse.GetValue(maxNewTokens), t, k, p, parse.GetValue(beams)) is { } problem)
            {
                parse.InvocationConfiguration.Error.WriteLine("error: generate: " + problem);
                return Task.FromResult(ExitCodes.Usage);
            }

            bool sample = t is not 0f && (t is not null || k is not null || p is not null || s is not null);
            var options = new GenerationOptions
            {
                MaxNewTokens = parse.GetValue(maxNewTokens),
                DoSample = sample,
                Temperature = t is { } tv and not 0f ? tv : 1f,
                TopK = k ?? 50, // HF's default top_k when sampling
                TopP = p ?? 1f,
                Seed = s,
                NumBeams = parse.GetValue(beams),
            };
            return RunAsync(parse.GetValue(prompt)!, parse.GetValue(model)!, options, parse.InvocationConfiguration.Output, parse.InvocationConfiguration.Error, ct, dtype: ParseDType(parse.GetValue(dtype)!),
                modelIsDefault: PipelineVerbs.IsDefault(parse, model), stats: parse.GetValue(stats), kvCache: ParseKvCache(parse.GetValue(kvCache)));
        });
        return command;
    }

    /// <summary>What is wrong with the sampling flags, in the flags' own words (as <c>--help</c> states them), or null.</summary>
    internal static string? FlagError(int maxNewTokens, float? temperature, int? topK, float? topP, int beams)
    {
        var inv = CultureInfo.InvariantCulture;
        if (maxNewTokens < 1) return string.Create(inv, $"--max-new-tokens must be at least 1 (got {maxNewTokens}).");
        if (temperature is { } t && (!float.IsFinite(t) || t < 0)) return string.Create(inv, $"--temperature must be 0 (greedy) or more (got {t}).");
        if (topK is < 0) return string.Create(inv, $"--top-k must be 0 (no limit) or more (got {topK}).");
        if (topP is { } p && (!float.IsFinite(p) || p <= 0 || p > 1)) return string.Create(inv, $"--top-p must be in (0, 1] (got {p}).");
        if (beams < 1) return string.Create(inv, $"--beams must be at least 1 (got {beams}; 1 means no beam search).");
        return null;
    }

    /// <summary>The weight type named by <c>--dtype</c> (f32, f16, bf16; the parser has already rejected anything else).</summary>
    internal static DType ParseDType(string name) => name switch
    {
        "f16" => DType.F16,
        "bf16" => DType.BF16,
        "f32" => DType.F32,
        _ => throw new ArgumentException($"--dtype '{name}' is not a weight type; use f32, f16 or bf16.", nameof(name)),
    };

    /// <summary>The <c>--kv-cache</c> option of the verbs that decode with a local causal LM.</summary>
    internal static Option<string?> KvCacheOption()
    {
        var option = new Option<string?>("--kv-cache")
        {
            Description = "How the KV cache stores keys and values: f16 (half the memory and the bytes each decoded token reads, as llama.cpp's default) or f32. Default: f16 for f16/bf16/quantized weights, f32 for f32 weights.",
        };
        option.AcceptOnlyFromAmong("f16", "f32");
        return option;
    }

    /// <summary>The cache type named by <c>--kv-cache</c>, or null (the model's default).</summary>
    internal static DType? ParseKvCache(string? name) => name switch
    {
        null => null,
        "f16" => DType.F16,
        "f32" => DType.F32,
        _ => throw new ArgumentException($"--kv-cache '{name}' is not a cache type; use f16 or f32.", nameof(name)),
    };

    internal static async Task<int> RunAsync(string prompt, string model, GenerationOptions options, TextWriter output, TextWriter error, CancellationToken ct, HubOptions? hub = null, DType dtype = DType.F32, bool modelIsDefault = false, bool stats = false, DType? kvCache = null)
    {
        try
        {
            options.Validate();
            ICausalLM lm;
            TextTokenizer tokenizer;
            if (LlamaGguf.IsGgufFile(model))
            {
                (lm, tokenizer) = AutoModelForCausalLM.FromGguf(model, dtype);
            }
            else
            {
                var source = new PipelineOptions { Hub = hub, UseShippedWhenUnavailable = modelIsDefault, Warning = message => error.WriteLine("note: " + message) };
                string folder = (await ModelFolders.ResolveAsync(model, source, FolderHint, ct).ConfigureAwait(false)).Directory;
                lm = AutoModelForCausalLM.FromPretrained(folder, dtype);
                tokenizer = AutoTokenizer.FromPretrained(folder);
            }

            KvCacheElementType.Apply(lm, kvCache);
            var timed = stats ? new TimedCausalLM(lm) : null;
            var generator = new TextGenerator(timed ?? lm);
            generator.EnsureFits(tokenizer.Encode(prompt).Ids.Count, options);
            await output.WriteAsync(prompt).ConfigureAwait(false);
            if (options.NumBeams > 1)
            {
                await output.WriteAsync(generator.Generate(tokenizer, prompt, options, ct)).ConfigureAwait(false);
            }
            else
            {
                await foreach (var piece in generator.GenerateStreamingAsync(tokenizer, prompt, options, ct).ConfigureAwait(false))
                {
                    await output.WriteAsync(piece).ConfigureAwait(false);
                    await output.FlushAsync(ct).ConfigureAwait(false);
                }
            }

            await output.WriteLineAsync().ConfigureAwait(false);
            if (timed is not null)
            {
                await error.WriteLineAsync(timed.Report()).ConfigureAwait(false);
            }

            return 0;
        }
        catch (Exception e) when (e is ArgumentException or ModelUnavailableException or ModelConfigException or ModelLoadException or InvalidDataException or SafeTensorsException or NotSupportedException or IOException)
        {
            await error.WriteLineAsync("error: " + e.Message.ReplaceLineEndings(" ")).ConfigureAwait(false);
            return e is ArgumentException ? 2 : 1;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync().ConfigureAwait(false);
            return 130;
        }
    }
}
