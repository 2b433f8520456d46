using PuppeteerSharp;
using Sharpformer.Models;
using Xunit.Abstractions;

namespace Sharpformer.Explain.Tests;

/// <summary>
/// A fact that needs Debian's chromium: skipped with a message when the browser is missing on a developer machine,
/// but run (and so failing) in CI, where CI=true and .ci/run installs chromium.
/// </summary>
public sealed class ChromiumFactAttribute : FactAttribute
{
    public const string ChromiumPath = "/usr/bin/chromium";

    public ChromiumFactAttribute()
    {
        bool ci = string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase);
        if (!File.Exists(ChromiumPath) && !ci)
        {
            Skip = $"chromium is not installed at {ChromiumPath}: `apt-get install chromium` to run the browser tests (in CI they fail instead of skipping).";
        }
    }
}

/// <summary>The page in a real headless chromium: it loads clean, shows what it should, reacts to the head selector, and is served.</summary>
public sealed class BrowserTests(ITestOutputHelper log)
{
    [ChromiumFact]
    public async Task BertPage_LoadsCleanly_ShowsTokensHeatmapsAndPrediction_HeadSelectorRedraws()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Bert);
        var report = Explainer.Run(model, tokenizer, TestModels.Seed, modelName: "random-bert-mlm");
        string path = WritePage(report, "bert-mlm.html");

        await using var session = await BrowserSession.OpenAsync();
        await session.LoadAsync(new Uri(path).AbsoluteUri);

        Assert.Equal(report.Tokens.Count, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#tokens .token').length"));
        Assert.Equal(report.Tokens[2].Text, await session.Page.EvaluateExpressionAsync<string>("document.querySelectorAll('#tokens .token .text')[2].textContent"));
        int expectedThumbs = report.Model.Layers * report.Model.Heads;
        Assert.Equal(expectedThumbs, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#attention-grid canvas.attention-thumb').length"));
        Assert.Equal(report.Model.Layers, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#attention-grid canvas.attention-thumb-average').length"));
        string top = await session.Page.EvaluateExpressionAsync<string>("document.querySelector('#output li.prediction').getAttribute('data-id')");
        Assert.Equal(report.Output.Masks[0].Candidates[0].Id.ToString(System.Globalization.CultureInfo.InvariantCulture), top);
        Assert.Equal((report.Model.Layers + 1) * report.Lens.Positions.Length, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#lens-table td.lens-cell').length"));

        // The head selector changes the picture: the main heatmap's pixels differ between head 0 and head 1.
        await session.Page.SelectAsync("#head-select", "0");
        string head0 = await session.Page.EvaluateExpressionAsync<string>("document.getElementById('attention-canvas').toDataURL()");
        await session.Page.SelectAsync("#head-select", "1");
        string head1 = await session.Page.EvaluateExpressionAsync<string>("document.getElementById('attention-canvas').toDataURL()");
        Assert.Equal("1", await session.Page.EvaluateExpressionAsync<string>("document.getElementById('attention-canvas').getAttribute('data-head')"));
        Assert.NotEqual(head0, head1);

        // Clicking a thumbnail selects its layer and head.
        await session.Page.ClickAsync("#attention-grid canvas.attention-thumb[data-layer='1'][data-head='2']");
        Assert.Equal("1", await session.Page.EvaluateExpressionAsync<string>("document.getElementById('layer-select').value"));
        Assert.Equal("2", await session.Page.EvaluateExpressionAsync<string>("document.getElementById('head-select').value"));

        await session.ScreenshotAsync(Path.Combine(TestModels.Artifacts(), "explain-bert-random.png"), log);
        session.AssertClean();
    }

    [ChromiumFact]
    public async Task Gpt2Page_ShowsCausalMaskAndNextToken()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Gpt2);
        var report = Explainer.Run(model, tokenizer, "ab a ab a", modelName: "tiny-random-gpt2");
        string path = WritePage(report, "gpt2.html");

        await using var session = await BrowserSession.OpenAsync();
        await session.LoadAsync(new Uri(path).AbsoluteUri);
        Assert.Equal(report.Tokens.Count, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#tokens .token').length"));
        Assert.Equal(report.Output.Next!.Raw.Count, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#next-raw li.prediction').length"));

        // The top-right cell (query 0, key T−1) is drawn in the causal-mask grey, not in the weight colours.
        var pixel = await session.Page.EvaluateExpressionAsync<int[]>(
            "Array.from(document.getElementById('attention-canvas').getContext('2d').getImageData(document.getElementById('attention-canvas').width - 1, 0, 1, 1).data)");
        Assert.Equal(pixel[0], pixel[1]);
        Assert.Equal(pixel[1], pixel[2]);
        Assert.InRange(pixel[0], 190, 240);

        await session.ScreenshotAsync(Path.Combine(TestModels.Artifacts(), "explain-gpt2-random.png"), log);
        session.AssertClean();
    }

    [ChromiumFact]
    public async Task RotaryPage_FromASyntheticModel_LoadsCleanly()
    {
        var tokenizer = FakeRotaryModel.Tokenizer();
        var report = Explainer.Run(new FakeRotaryModel(tokenizer.VocabularySize), tokenizer, "the cat sat on the mat");
        string path = WritePage(report, "rotary.html");

        await using var session = await BrowserSession.OpenAsync();
        await session.LoadAsync(new Uri(path).AbsoluteUri);
        Assert.True(await session.Page.EvaluateExpressionAsync<bool>("document.getElementById('positions-sin-canvas') !== null"));
        Assert.Contains("Rotary", await session.Page.EvaluateExpressionAsync<string>("document.getElementById('positions-note').textContent"), StringComparison.Ordinal);
        session.AssertClean();
    }

    [ChromiumFact]
    public async Task MiniLm_SeedSentence_RealBertPage()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.MiniLm);
        Assert.Equal(ExplainOutputKind.EmbeddingProjection, model.OutputKind);
        var report = Explainer.Run(model, tokenizer, TestModels.Seed, modelName: "sentence-transformers/all-MiniLM-L6-v2 (converted)");
        string path = WritePage(report, "minilm.html");

        await using var session = await BrowserSession.OpenAsync();
        await session.LoadAsync(new Uri(path).AbsoluteUri);
        Assert.Equal(6 * 12, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#attention-grid canvas.attention-thumb').length"));
        Assert.Equal(report.Tokens.Count, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#tokens .token').length"));
        await session.ScreenshotAsync(Path.Combine(TestModels.Artifacts(), "explain-minilm.png"), log);
        session.AssertClean();
    }

    [ChromiumFact]
    public async Task Served_TypingASentence_RecomputesThePage()
    {
        var (tokenizer, model) = ExplainModels.Load(TestModels.Bert);
        using var server = new ExplainServer(model, tokenizer, TestModels.Seed, modelName: "random-bert-mlm");
        var address = server.Start();
        Assert.True(System.Net.IPAddress.IsLoopback(System.Net.IPAddress.Parse(address.Host)));

        await using var session = await BrowserSession.OpenAsync();
        await session.LoadAsync(address.AbsoluteUri);
        Assert.True(await session.Page.EvaluateExpressionAsync<bool>("!document.getElementById('explain-form').hidden"));
        Assert.Equal(TestModels.Seed, await session.Page.EvaluateExpressionAsync<string>("document.getElementById('explain-input').value"));

        await session.Page.EvaluateExpressionAsync("document.getElementById('explain-input').value = ''");
        await session.Page.TypeAsync("#explain-input", "the cat sat on the mat");
        await Task.WhenAll(session.Page.WaitForNavigationAsync(), session.Page.ClickAsync("#explain-form button"));
        var texts = await session.Page.EvaluateExpressionAsync<string[]>("Array.from(document.querySelectorAll('#tokens .token .text')).map(e => e.textContent)");
        Assert.Equal(["[CLS]", "the", "cat", "sat", "on", "the", "mat", "[SEP]"], texts);
        Assert.Equal(0, await session.Page.EvaluateExpressionAsync<int>("document.querySelectorAll('#output li.prediction').length"));
        session.AssertClean();
    }

    private static string WritePage(ExplainReport report, string name)
    {
        string path = Path.Combine(TestModels.Artifacts(), name);
        ExplainPage.Write(report, path);
        return path;
    }
}

/// <summary>A headless chromium page that records console errors, page errors and failed requests.</summary>
internal sealed class BrowserSession : IAsyncDisposable
{
    private readonly List<string> _problems = [];

    private BrowserSession(IBrowser browser, IPage page)
    {
        Browser = browser;
        Page = page;
        page.Console += (_, e) =>
        {
            if (e.Message.Type == ConsoleType.Error) _problems.Add("console error: " + e.Message.Text);
        };
        page.PageError += (_, e) => _problems.Add("page error: " + e.Message);
        page.RequestFailed += (_, e) => _problems.Add("failed request: " + e.Request.Url);
        page.Response += (_, e) =>
        {
            if ((int)e.Response.Status >= 400) _problems.Add($"HTTP {(int)e.Response.Status}: {e.Response.Url}");
        };
    }

    public IBrowser Browser { get; }

    public IPage Page { get; }

    public static async Task<BrowserSession> OpenAsync()
    {
        var browser = await Puppeteer.LaunchAsync(new LaunchOptions
        {
            Headless = true,
            ExecutablePath = ChromiumFactAttribute.ChromiumPath,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        });
        var page = await browser.NewPageAsync();
        await page.SetViewportAsync(new ViewPortOptions { Width = 1280, Height = 900 });
        return new BrowserSession(browser, page);
    }

    public async Task LoadAsync(string url)
    {
        var response = await Page.GoToAsync(url, WaitUntilNavigation.Load);
        Assert.NotNull(response);
    }

    public async Task ScreenshotAsync(string path, ITestOutputHelper log)
    {
        await Page.ScreenshotAsync(path, new ScreenshotOptions { FullPage = true });
        Assert.True(new FileInfo(path).Length > 0);
        log.WriteLine($"screenshot: {path}");
    }

    /// <summary>No console error, page error or failed request happened.</summary>
    public void AssertClean() => Assert.True(_problems.Count == 0, string.Join("\n", _problems));

    public async ValueTask DisposeAsync()
    {
        await Page.CloseAsync();
        await Browser.CloseAsync();
        await Browser.DisposeAsync();
    }
}
