using System.Net;
using System.Text;
using Sharpformer.Models;
using Sharpformer.Text;

namespace Sharpformer.Explain;

/// <summary>
/// Serves the explainer page on the loopback interface: <c>GET /?text=…</c> recomputes the page for that text
/// (the page shows a text box that submits here). One request is computed at a time (the model is not thread-safe).
/// </summary>
public sealed class ExplainServer : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly IExplainableModel _model;
    private readonly TextTokenizer _tokenizer;
    private readonly ExplainOptions _options;
    private readonly string _modelName;
    private readonly string _defaultText;
    private readonly Lock _gate = new();
    private Task? _loop;

    /// <summary>Prepares a server for <paramref name="model"/>; <see cref="Start"/> opens it.</summary>
    /// <param name="model">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="defaultText">The text shown when the request names none.</param>
    /// <param name="options">What the pages compute; null for the defaults.</param>
    /// <param name="modelName">How the page names the model.</param>
    public ExplainServer(IExplainableModel model, TextTokenizer tokenizer, string defaultText, ExplainOptions? options = null, string modelName = "")
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(defaultText);
        _model = model;
        _tokenizer = tokenizer;
        _defaultText = defaultText;
        _options = options ?? new ExplainOptions();
        _options.Validate();
        _modelName = modelName;
    }

    /// <summary>The address the page is served at (after <see cref="Start"/>).</summary>
    public Uri? Address { get; private set; }

    /// <summary>Starts listening on http://127.0.0.1:<paramref name="port"/>/ (0 picks a free port).</summary>
    /// <param name="port">The TCP port, or 0.</param>
    /// <returns>The address.</returns>
    /// <exception cref="InvalidOperationException">The port cannot be opened; the message says which.</exception>
    public Uri Start(int port = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        int chosen = port == 0 ? FreePort() : port;
        string prefix = $"http://127.0.0.1:{chosen}/";
        _listener.Prefixes.Add(prefix);
        try
        {
            _listener.Start();
        }
        catch (HttpListenerException e)
        {
            throw new InvalidOperationException($"explain --serve: cannot listen on {prefix} ({e.Message}); pick another --port.", e);
        }

        Address = new Uri(prefix);
        _loop = Task.Run(LoopAsync);
        return Address;
    }

    /// <summary>The page for <paramref name="text"/>, computed as a request computes it.</summary>
    /// <param name="text">The text.</param>
    /// <returns>The HTML.</returns>
    public string Page(string text)
    {
        lock (_gate)
        {
            var report = Explainer.Run(_model, _tokenizer, text, _options, _modelName) with { Interactive = true };
            return ExplainPage.Render(report);
        }
    }

    /// <summary>Stops listening.</summary>
    public void Dispose()
    {
        if (_listener.IsListening) _listener.Stop();
        _listener.Close();
        try
        {
            _loop?.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // The loop ends with the listener's disposal exception; nothing is left to clean up.
        }
    }

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            Handle(context);
        }
    }

    private void Handle(HttpListenerContext context)
    {
        var response = context.Response;
        int status = 200;
        string body;
        try
        {
            if (context.Request.HttpMethod != "GET" || context.Request.Url?.AbsolutePath != "/")
            {
                status = 404;
                body = "<!DOCTYPE html><title>not found</title><p>Only GET / (with ?text=…) is served here.</p>";
            }
            else
            {
                string text = context.Request.QueryString["text"] is { Length: > 0 } asked ? asked : _defaultText;
                body = Page(text);
            }
        }
        catch (ArgumentException e)
        {
            status = 400;
            body = "<!DOCTYPE html><meta charset=\"utf-8\"><title>explain: bad input</title><p>" + WebUtility.HtmlEncode(e.Message) + "</p><p><a href=\"/\">back</a></p>";
        }

        var bytes = Encoding.UTF8.GetBytes(body);
        response.StatusCode = status;
        response.ContentType = "text/html; charset=utf-8";
        response.ContentLength64 = bytes.Length;
        response.OutputStream.Write(bytes);
        response.Close();
    }

    private static int FreePort()
    {
        using var socket = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        int port = ((IPEndPoint)socket.LocalEndpoint).Port;
        socket.Stop();
        return port;
    }
}
