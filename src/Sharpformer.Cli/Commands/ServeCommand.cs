using System.CommandLine;
using Sharpformer.IO.Config;
using Sharpformer.IO.SafeTensors;
using Sharpformer.NN;
using Sharpformer.Pipelines;
using Sharpformer.Server;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer serve --model name=path [--model ...] [--host 127.0.0.1] [--port 8000] [--api-key K | --api-keys-file F]
/// [--max-batch 16] [--max-queue 64] [--max-context N] [--max-body-bytes N] [--timeout S] [--shutdown-grace S]</c>: the OpenAI-compatible
/// server (<see cref="SharpformerServer"/>) until Ctrl+C.
/// </summary>
internal static class ServeCommand
{
    public const string KeyVariable = "SHARPFORMER_API_KEY";

    public static Command Create()
    {
        var models = new Option<string[]>("--model")
        {
            Description = "A model to serve as name=path (a local folder or Hub id); repeat for several. A bare path is served under its folder name.",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var host = new Option<string>("--host") { Description = "Address to bind: 127.0.0.1 (default, this machine only) or e.g. 0.0.0.0 to accept other machines.", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 picks a free one).", DefaultValueFactory = _ => 8000 };
        var apiKey = new Option<string?>("--api-key") { Description = $"Require 'Authorization: Bearer <key>' on every route but /health (also read from {KeyVariable})." };
        var keysFile = new Option<string?>("--api-keys-file") { Description = "A file of accepted keys, one per line (blank lines and # comments ignored)." };
        var maxBatch = new Option<int>("--max-batch") { Description = "Per generative model: sequences decoded together.", DefaultValueFactory = _ => 16 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Per generative model: requests waiting for a slot; beyond it 429 with Retry-After.", DefaultValueFactory = _ => 64 };
        var maxContext = new Option<int?>("--max-context") { Description = "Tokens per sequence (prompt + completion), below the model's context to save memory: the KV cache holds --max-batch × this many tokens per layer." };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body accepted (413 beyond).", DefaultValueFactory = _ => 1 << 20 };
        var timeout = new Option<double>("--timeout") { Description = "Per-request deadline in seconds (504 beyond).", DefaultValueFactory = _ => 300 };
        var grace = new Option<double>("--shutdown-grace") { Description = "On Ctrl+C, seconds in-flight requests may finish before they are cancelled.", DefaultValueFactory = _ => 10 };
        var command = new Command("serve", "Serve models over an OpenAI-compatible HTTP API (completions, chat, embeddings, fill-mask) with continuous batching.")
        {
            models, host, port, apiKey, keysFile, maxBatch, maxQueue, maxContext, maxBody, timeout, grace,
        };
        command.SetAction(async (parse, ct) =>
        {
            var error = parse.InvocationConfiguration.Error;
            try
            {
                var keys = ReadKeys(parse.GetValue(apiKey), Environment.GetEnvironmentVariable(KeyVariable), parse.GetValue(keysFile));
                var options = new ServerOptions
                {
                    Host = parse.GetValue(host)!,
                    Port = parse.GetValue(port),
                    ApiKeys = keys,
                    MaxBatch = parse.GetValue(maxBatch),
                    MaxQueue = parse.GetValue(maxQueue),
                    MaxContext = parse.GetValue(maxContext),
                    MaxRequestBodyBytes = parse.GetValue(maxBody),
                    RequestTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                    ShutdownGrace = TimeSpan.FromSeconds(parse.GetValue(grace)),
                };
                options.Validate();
                return await RunAsync(options, parse.GetValue(models)!, parse.InvocationConfiguration.Output, ct).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ArgumentException or ModelUnavailableException or ModelConfigException or ModelLoadException or InvalidDataException or SafeTensorsException or NotSupportedException or IOException)
            {
                await error.WriteLineAsync("error: " + e.Message.ReplaceLineEndings(" ")).ConfigureAwait(false);
                return e is ArgumentException ? 2 : 1;
            }
        });
        return command;
    }

    /// <summary>name=path pairs (a bare path: its folder name).</summary>
    internal static List<(string Name, string Path)> ParseModels(IEnumerable<string> specs)
    {
        var result = new List<(string, string)>();
        foreach (var spec in specs)
        {
            int eq = spec.IndexOf('=', StringComparison.Ordinal);
            string path = eq >= 0 ? spec[(eq + 1)..] : spec;
            string name = eq >= 0 ? spec[..eq] : Path.GetFileName(Path.TrimEndingDirectorySeparator(spec));
            if (string.IsNullOrWhiteSpace(name) || string.IsNullOrWhiteSpace(path))
            {
                throw new ArgumentException($"--model '{spec}': give name=path, e.g. --model gpt2=./models/gpt2.");
            }

            result.Add((name, path));
        }

        return result;
    }

    /// <summary>The keys from --api-key, the environment and --api-keys-file together (none: no authentication).</summary>
    internal static List<string> ReadKeys(string? key, string? environment, string? file)
    {
        var keys = new List<string>();
        foreach (var k in new[] { key, environment })
        {
            if (!string.IsNullOrWhiteSpace(k))
            {
                keys.Add(k.Trim());
            }
        }

        if (file is not null)
        {
            if (!File.Exists(file))
            {
                throw new ArgumentException($"--api-keys-file {file}: no such file; give a file with one key per line.");
            }

            keys.AddRange(File.ReadAllLines(file).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')));
            if (keys.Count == 0)
            {
                throw new ArgumentException($"--api-keys-file {file}: holds no key; put one key per line.");
            }
        }

        return keys;
    }

    private static async Task<int> RunAsync(ServerOptions options, IEnumerable<string> specs, TextWriter output, CancellationToken ct)
    {
        var served = new List<ServedModel>();
        foreach (var (name, path) in ParseModels(specs))
        {
            await output.WriteLineAsync($"loading {name} from {path} ...").ConfigureAwait(false);
            served.Add(await ServedModel.LoadAsync(name, path, ct).ConfigureAwait(false));
        }

        var server = SharpformerServer.Create(options, served);
        await using (server.ConfigureAwait(false))
        {
            await server.StartAsync(ct).ConfigureAwait(false);
            await output.WriteLineAsync($"serving {string.Join(", ", served.Select(m => m.Name))} on {server.Address} (OpenAI base URL {new Uri(server.Address, "v1")}; {(options.ApiKeys.Count > 0 ? "API key required" : "no API key")}); Ctrl+C stops").ConfigureAwait(false);
            try
            {
                await server.WaitForShutdownAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Ctrl+C through System.CommandLine: the graceful stop below.
            }

            await output.WriteLineAsync("stopping: letting in-flight requests finish ...").ConfigureAwait(false);
            await server.StopAsync().ConfigureAwait(false);
        }

        return 0;
    }
}
