using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Sharpformer.Cli.Commands;

namespace Sharpformer.Cli.Tests;

/// <summary>
/// <c>sharpformer serve</c> in-process on 127.0.0.1: two models from folders (GPT-2 and BERT fixtures), a key from
/// --api-key, a completion and an embedding over HTTP, 401 without the key, and a clean exit on cancellation (Ctrl+C);
/// plus the name=path and key parsing.
/// </summary>
public class ServeCommandTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "fixtures", name);

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    [Fact]
    public async Task Serve_TwoModelsWithKey_AnswersCompletionsAndEmbeddingsThenStopsOnCancel()
    {
        int port = FreePort();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        var run = Program.BuildRoot().Parse(["serve", "--model", $"gpt={Fixture("train_gpt2")}", "--model", $"bert={Fixture("train_bert")}", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--api-key", "k1"]).InvokeAsync(null, cts.Token);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/") };
        var until = DateTime.UtcNow.AddSeconds(60);
        while (true)
        {
            if (run.IsCompleted)
            {
                Assert.Fail($"serve exited early with {await run}");
            }

            try
            {
                if ((await http.GetAsync(new Uri("health", UriKind.Relative))).IsSuccessStatusCode)
                {
                    break;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(100);
            }
        }

        var unauthorized = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), Json(new { model = "gpt", prompt = "a", max_tokens = 3 }));
        Assert.Equal(HttpStatusCode.Unauthorized, unauthorized.StatusCode);

        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "k1");
        var completion = await http.PostAsync(new Uri("v1/completions", UriKind.Relative), Json(new { model = "gpt", prompt = "a", max_tokens = 3, temperature = 0 }));
        Assert.Equal(HttpStatusCode.OK, completion.StatusCode);
        var usage = JsonDocument.Parse(await completion.Content.ReadAsStringAsync()).RootElement.GetProperty("usage");
        Assert.True(usage.GetProperty("completion_tokens").GetInt32() is >= 1 and <= 3);

        var embedding = await http.PostAsync(new Uri("v1/embeddings", UriKind.Relative), Json(new { model = "bert", input = "the cat" }));
        Assert.Equal(HttpStatusCode.OK, embedding.StatusCode);

        var chat = await http.PostAsync(new Uri("v1/chat/completions", UriKind.Relative), Json(new { model = "gpt", messages = new[] { new { role = "user", content = "hi" } } }));
        Assert.Equal(HttpStatusCode.BadRequest, chat.StatusCode);
        Assert.Contains("chat template", await chat.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        await cts.CancelAsync();
        Assert.Equal(0, await run);
    }

    [Fact]
    public void ParseModels_NameEqualsPathOrBareFolder()
    {
        var models = ServeCommand.ParseModels(["a=/x/y", "/models/gpt2/"]);
        Assert.Equal([("a", "/x/y"), ("gpt2", "/models/gpt2/")], models);
        Assert.Throws<ArgumentException>(() => ServeCommand.ParseModels(["=/x"]));
    }

    [Fact]
    public void ReadKeys_FlagEnvironmentAndFileTogether()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllLines(file, ["# keys", "", "k3", "  k4  "]);
            Assert.Equal(["k1", "k2", "k3", "k4"], ServeCommand.ReadKeys("k1", "k2", file));
            Assert.Empty(ServeCommand.ReadKeys(null, null, null));
            File.WriteAllLines(file, ["# none"]);
            Assert.Throws<ArgumentException>(() => ServeCommand.ReadKeys(null, null, file));
            Assert.Throws<ArgumentException>(() => ServeCommand.ReadKeys(null, null, file + ".missing"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void BenchServe_Tiny_PrintsSteadyAndBurstRowsPerLevelAndTheTargets()
    {
        var output = new StringWriter();
        var config = new System.CommandLine.InvocationConfiguration { Output = output, Error = output };
        int code = Program.BuildRoot().Parse(["bench", "serve", "--tiny", "--tokens", "4", "--prompt-tokens", "3", "--streams", "1,3", "--seconds", "0.5"]).Invoke(config);
        Assert.Equal(0, code);
        var lines = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        int steady = Array.FindIndex(lines, l => l.StartsWith("steady load", StringComparison.Ordinal));
        int burst = Array.FindIndex(lines, l => l.StartsWith("burst", StringComparison.Ordinal));
        Assert.True(steady >= 0 && burst > steady, output.ToString());
        Assert.StartsWith("      1 ", lines[steady + 2], StringComparison.Ordinal);
        Assert.StartsWith("      3 ", lines[steady + 3], StringComparison.Ordinal);
        Assert.StartsWith("      1 ", lines[burst + 2], StringComparison.Ordinal);
        Assert.StartsWith("      3      12 ", lines[burst + 3], StringComparison.Ordinal);
        Assert.Contains("targets", lines[^1], StringComparison.Ordinal);
    }

    [Fact]
    public void BenchServe_Tiny_Json_SteadyLoadMeasuresRequestsInsideItsWindow()
    {
        var output = new StringWriter();
        var config = new System.CommandLine.InvocationConfiguration { Output = output, Error = output };
        int code = Program.BuildRoot().Parse(["bench", "serve", "--tiny", "--tokens", "6", "--prompt-tokens", "3", "--streams", "2", "--seconds", "1", "--json"]).Invoke(config);
        Assert.Equal(0, code);
        using var doc = JsonDocument.Parse(output.ToString());
        var steady = doc.RootElement.GetProperty("steady")[0];
        Assert.Equal(2, steady.GetProperty("streams").GetInt32());
        Assert.True(steady.GetProperty("requests").GetInt32() > 0, output.ToString());
        Assert.True(steady.GetProperty("tokens_per_second").GetDouble() > 0, output.ToString());
        double p50 = steady.GetProperty("time_to_first_token_median_s").GetDouble();
        double p90 = steady.GetProperty("time_to_first_token_p90_s").GetDouble();
        Assert.True(p50 > 0 && p90 >= p50, output.ToString());
        Assert.InRange(steady.GetProperty("mean_batch").GetDouble(), 1.0, 2.0);
    }

    private static StringContent Json(object value) => new(JsonSerializer.Serialize(value), Encoding.UTF8, "application/json");
}
