using System.Net;
using System.Reflection;
using System.Text;
using System.Text.Json;

namespace Sharpformer.Explain;

/// <summary>
/// Writes the explainer page: one self-contained HTML file — the style sheet and the script inlined, the report
/// embedded as JSON in <c>&lt;script id="explain-data" type="application/json"&gt;</c> — that loads nothing else.
/// </summary>
public static class ExplainPage
{
    /// <summary>The id of the script element that holds the report's JSON.</summary>
    public const string DataElementId = "explain-data";

    private static readonly Lazy<string> Script = new(() => Resource("Sharpformer.Explain.explain.js"));
    private static readonly Lazy<string> Style = new(() => Resource("Sharpformer.Explain.explain.css"));

    /// <summary>The page for <paramref name="report"/> as one HTML string.</summary>
    /// <param name="report">What to show.</param>
    /// <returns>The HTML.</returns>
    public static string Render(ExplainReport report)
    {
        ArgumentNullException.ThrowIfNull(report);

        // The default encoder escapes <, > and & as \u003C…, so the JSON cannot close its script element.
        string json = JsonSerializer.Serialize(report, ExplainJson.Options);
        string title = WebUtility.HtmlEncode(report.Text.Length > 60 ? report.Text[..60] + "…" : report.Text);
        var html = new StringBuilder(json.Length + 40_000);
        html.Append("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        html.Append("<title>sharpformer explain — ").Append(title).Append("</title>\n");
        html.Append("<link rel=\"icon\" href=\"data:,\">\n<style>\n").Append(Style.Value).Append("</style>\n</head>\n<body>\n");
        html.Append(Body);
        html.Append("<script id=\"").Append(DataElementId).Append("\" type=\"application/json\">").Append(json).Append("</script>\n");
        html.Append("<script>\n").Append(Script.Value).Append("</script>\n</body>\n</html>\n");
        return html.ToString();
    }

    /// <summary>Writes the page to <paramref name="path"/> (UTF-8, no BOM), replacing it.</summary>
    /// <param name="report">What to show.</param>
    /// <param name="path">The .html file.</param>
    public static void Write(ExplainReport report, string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        File.WriteAllText(path, Render(report), new UTF8Encoding(false));
    }

    /// <summary>Reads the report back out of a page <see cref="Render"/> wrote (what the tests compare with the model).</summary>
    /// <param name="html">The page.</param>
    /// <returns>The embedded report.</returns>
    /// <exception cref="InvalidDataException">The page has no explain-data element.</exception>
    public static ExplainReport ReadData(string html)
    {
        ArgumentNullException.ThrowIfNull(html);
        string open = "<script id=\"" + DataElementId + "\" type=\"application/json\">";
        int start = html.IndexOf(open, StringComparison.Ordinal);
        int end = start < 0 ? -1 : html.IndexOf("</script>", start, StringComparison.Ordinal);
        if (start < 0 || end < 0)
        {
            throw new InvalidDataException($"The page has no <script id=\"{DataElementId}\"> element; it was not written by ExplainPage.");
        }

        start += open.Length;
        return JsonSerializer.Deserialize<ExplainReport>(html.AsSpan(start, end - start), ExplainJson.Options)
            ?? throw new InvalidDataException("The page's explain-data element holds null.");
    }

    private static string Resource(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"The Sharpformer.Explain assembly lacks its embedded resource {name}; rebuild it.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }

    private const string Body = """
<header>
<h1>sharpformer explain</h1>
<p class="note" id="model-line"></p>
<p>Input: <strong id="input-text"></strong></p>
<form id="explain-form" method="get" action="/" hidden><input id="explain-input" name="text" aria-label="text to explain"><button type="submit">Explain</button></form>
</header>
<section id="tokens-section">
<h2>1. Tokens</h2>
<p class="note">Each box is one token: the characters it covers, the vocabulary string when it differs (## and Ġ are the tokenizers' word markers), its id and its character offsets. Orange: special tokens. A blue left edge: a sub-word that continues the previous token's word.</p>
<div id="tokens"></div>
</section>
<section id="embeddings-section">
<h2>2. Token embeddings</h2>
<p class="note">The rows of the embedding table these tokens look up (token down, dimension across; red positive, blue negative). Hover for values.</p>
<div id="embeddings-panel" class="panel"></div>
</section>
<section id="positions-section">
<h2>3. Positions</h2>
<p class="note" id="positions-note"></p>
<div id="positions-panel" class="row"></div>
</section>
<section id="attention-section">
<h2>4. Attention</h2>
<p class="note">Who looks at whom: row = the query token, column = the key token it reads, darker = more weight (each row sums to 1). The line view draws the same weights from queries (left) to keys (right); hover a query to isolate its lines. Grey checker cells are hidden by the causal mask. Click any thumbnail below to select it.</p>
<div class="controls"><label>Layer <select id="layer-select"></select></label><label>Head <select id="head-select"></select></label></div>
<div class="row"><div id="attention-heatmap" class="panel"></div><svg id="attention-lines" xmlns="http://www.w3.org/2000/svg"></svg></div>
<div id="attention-grid"></div>
</section>
<section id="residual-section">
<h2>5. Residual stream</h2>
<p class="note">The L2 norm of each token's hidden state after each layer (row 0 = the embeddings output).</p>
<div id="norms-panel" class="panel"></div>
<h3>Logit lens</h3>
<p class="note" id="lens-note"></p>
<div class="lens-wrap"><table id="lens-table"></table></div>
</section>
<section id="output-section">
<h2>6. Output</h2>
<div id="output"></div>
</section>
<div id="tooltip" role="tooltip"></div>

""";
}
