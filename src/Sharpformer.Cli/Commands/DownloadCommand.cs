using System.Collections.Concurrent;
using System.CommandLine;
using System.Globalization;
using Sharpformer.IO.Hub;
using Spectre.Console;

namespace Sharpformer.Cli.Commands;

/// <summary>
/// <c>sharpformer download &lt;repo&gt;</c>: fetches a model into the Hugging Face cache (shared with Python) and prints
/// the snapshot folder. Without <c>--include</c> it fetches what a model needs (config, safetensors weights, tokenizer
/// files); with it, every repo file matching a pattern.
/// </summary>
internal static class DownloadCommand
{
    public static Command Create()
    {
        var repo = new Argument<string>("repo") { Description = "Hub repo id ('org/name') or a local model folder." };
        var revision = new Option<string>("--revision")
        {
            Description = "Branch, tag or 40-hex commit.",
            DefaultValueFactory = _ => "main",
        };
        var include = new Option<string[]>("--include")
        {
            Description = "Only files matching these fnmatch patterns (e.g. '*.json' 'model-*.safetensors'); default: what a model needs.",
            AllowMultipleArgumentsPerToken = true,
        };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Cache root (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)." };
        var endpoint = new Option<string?>("--endpoint") { Description = "Hub URL (default: HF_ENDPOINT, else https://huggingface.co)." };

        var command = new Command("download", "Download a model from the Hugging Face Hub into the shared cache and print its snapshot folder.")
        {
            repo, revision, include, cacheDir, endpoint,
        };
        command.SetAction((parse, ct) => RunAsync(
            parse, parse.GetValue(repo)!, parse.GetValue(revision) ?? "main", parse.GetValue(include) ?? [],
            parse.GetValue(cacheDir), parse.GetValue(endpoint), ct));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, string repo, string revision, string[] include,
        string? cacheDir, string? endpoint, CancellationToken ct)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        try
        {
            var options = HubOptions.FromEnvironment();
            if (cacheDir is not null)
                options = options with { CacheDir = cacheDir };
            if (endpoint is not null)
            {
                if (!Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                    throw new ArgumentException($"--endpoint '{endpoint}' is not an absolute http(s) URL such as https://huggingface.co.");
                options = options with { Endpoint = uri };
            }

            using var client = new HubClient(options);
            var folder = await WithProgressAsync(progress => include.Length > 0
                ? client.SnapshotAsync(repo, revision, include, progress, ct)
                : ResolveFolderAsync(client, repo, revision, progress, ct)).ConfigureAwait(false);
            await output.WriteLineAsync(folder).ConfigureAwait(false);
            return 0;
        }
        catch (HubNetworkException e)
        {
            // The generic advice (offline mode, the cache) cannot help a download: say what can.
            var options = HubOptions.FromEnvironment();
            var hub = endpoint ?? options.Endpoint.ToString();
            string cause = e.InnerException?.Message ?? e.Message;
            await error.WriteLineAsync(options.Offline && endpoint is null
                ? $"error: offline mode is on (HF_HUB_OFFLINE={Environment.GetEnvironmentVariable("HF_HUB_OFFLINE")}), so {repo} cannot be downloaded; unset HF_HUB_OFFLINE to download it."
                : $"error: the Hub at {hub} cannot be reached to download {repo} ({CliErrors.OneLine(cause)}). Check the network, a proxy, or HF_ENDPOINT / --endpoint, and retry: what was received is kept and continues.").ConfigureAwait(false);
            return ExitCodes.Network;
        }
        catch (DirectoryNotFoundException)
        {
            // A name written as a path: download takes a repo id.
            await error.WriteLineAsync($"error: '{repo}' is not a valid Hugging Face repo id (download takes 'name' or 'org/name'), and no such local folder exists.").ConfigureAwait(false);
            return ExitCodes.Usage;
        }
        catch (OfflineCacheMissException)
        {
            await error.WriteLineAsync($"error: offline mode is on (HF_HUB_OFFLINE={Environment.GetEnvironmentVariable("HF_HUB_OFFLINE")}) and {repo} is not fully in the cache, so it cannot be downloaded; unset HF_HUB_OFFLINE to download it.").ConfigureAwait(false);
            return ExitCodes.Network;
        }
        catch (Exception e) when (e is HubException or ArgumentException or IOException)
        {
            await error.WriteLineAsync("error: " + CliErrors.OneLine(e.Message)).ConfigureAwait(false);
            return e is ArgumentException ? ExitCodes.Usage : ExitCodes.InputOrModel;
        }
        catch (OperationCanceledException)
        {
            await error.WriteLineAsync("error: download cancelled. The bytes received are kept in the cache (blobs/*.incomplete); run the same download again to continue from them.").ConfigureAwait(false);
            return 130;
        }
    }

    private static async Task<string> ResolveFolderAsync(HubClient client, string repo, string revision,
        IProgress<DownloadProgress>? progress, CancellationToken ct)
    {
        var files = await client.ResolveModelFilesAsync(repo, revision, progress, ct).ConfigureAwait(false);
        return files.Directory;
    }

    /// <summary>Runs <paramref name="work"/> with a progress bar per file on stderr when it is a terminal, else silently.</summary>
    private static async Task<string> WithProgressAsync(Func<IProgress<DownloadProgress>?, Task<string>> work)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (Console.IsErrorRedirected || !console.Profile.Capabilities.Interactive)
            return await work(null).ConfigureAwait(false);

        string result = "";
        await console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var tasks = new ConcurrentDictionary<string, ProgressTask>(StringComparer.Ordinal);
                var progress = new InlineProgress(p =>
                {
                    var task = tasks.GetOrAdd(p.FileName, name => ctx.AddTask(Markup.Escape(name), maxValue: Math.Max(1, p.TotalBytes ?? 1)));
                    if (p.TotalBytes is { } total)
                        task.MaxValue = Math.Max(1, total);
                    if (p.ResumedFrom > 0)
                        task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture, $"{p.FileName} (resumed at {p.ResumedFrom / 1e6:F1} MB)"));
                    task.Value = p.BytesDownloaded;
                });
                result = await work(progress).ConfigureAwait(false);
            }).ConfigureAwait(false);
        return result;
    }

    /// <summary>Calls the handler on the reporting thread (Progress&lt;T&gt; would post to the thread pool and reorder).</summary>
    private sealed class InlineProgress(Action<DownloadProgress> handler) : IProgress<DownloadProgress>
    {
        public void Report(DownloadProgress value) => handler(value);
    }
}
