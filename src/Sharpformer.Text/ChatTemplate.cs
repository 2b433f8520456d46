using System.Globalization;
using System.Text.Json;
using Sharpformer.Text.Jinja;

namespace Sharpformer.Text;

/// <summary>What a chat template renders besides the messages.</summary>
public sealed record ChatTemplateOptions
{
    /// <summary>End with the header of the assistant's turn, so the model writes the reply (HF's <c>add_generation_prompt</c>).</summary>
    public bool AddGenerationPrompt { get; init; }

    /// <summary>The <c>tools</c> variable (JSON-schema function descriptions); null renders as none, as transformers passes it.</summary>
    public IReadOnlyList<object?>? Tools { get; init; }

    /// <summary>The <c>documents</c> variable (retrieval documents); null renders as none, as transformers passes it.</summary>
    public IReadOnlyList<object?>? Documents { get; init; }

    /// <summary>More variables for the template (e.g. <c>date_string</c>); they override the special tokens of the same name.</summary>
    public IReadOnlyDictionary<string, object?>? Variables { get; init; }

    /// <summary>The clock behind <c>strftime_now</c>; null means the local time.</summary>
    public Func<DateTime>? Now { get; init; }

    /// <summary>Bounds on the rendering; null means <see cref="JinjaLimits"/>' defaults.</summary>
    public JinjaLimits? Limits { get; init; }
}

/// <summary>
/// A model's chat template (tokenizer_config.json <c>chat_template</c> or chat_template.jinja), rendered as
/// transformers' <c>apply_chat_template</c> renders it: Jinja with trim_blocks and lstrip_blocks, the special tokens
/// (<c>bos_token</c>, <c>eos_token</c>, ...) as variables, <c>raise_exception</c>, <c>strftime_now</c> and
/// transformers' <c>tojson</c>.
/// </summary>
public sealed class ChatTemplate
{
    private readonly JinjaTemplate _template;
    private readonly Dictionary<string, object?> _specialTokens;

    /// <summary>Parses a template.</summary>
    /// <param name="source">The Jinja text.</param>
    /// <param name="specialTokens">Variables such as bos_token and eos_token, by name.</param>
    /// <param name="origin">Where the template came from, for messages.</param>
    /// <exception cref="JinjaException">The template uses syntax this interpreter does not support; the message says what and where.</exception>
    public ChatTemplate(string source, IReadOnlyDictionary<string, string>? specialTokens = null, string origin = "chat template")
    {
        ArgumentNullException.ThrowIfNull(source);
        Source = source;
        Origin = origin;
        _specialTokens = [];
        foreach (var (name, value) in specialTokens ?? new Dictionary<string, string>())
        {
            _specialTokens[name] = value;
        }

        try
        {
            _template = JinjaTemplate.Parse(source);
        }
        catch (JinjaException e)
        {
            throw new JinjaException($"{origin}: {e.Message}", e.Line, e.Column);
        }
    }

    /// <summary>The Jinja text.</summary>
    public string Source { get; }

    /// <summary>Where the template came from (e.g. "tokenizer_config.json chat_template").</summary>
    public string Origin { get; }

    /// <summary>The end-of-sequence token the template's turns end with (tokenizer config <c>eos_token</c>), if named.</summary>
    public string? EosToken => _specialTokens.GetValueOrDefault("eos_token") as string;

    /// <summary>The special-token variables the template sees (bos_token, eos_token, ...).</summary>
    public IReadOnlyDictionary<string, object?> SpecialTokens => _specialTokens;

    /// <summary>
    /// Reads the chat template of a Hugging Face model folder: chat_template.jinja if present, else
    /// tokenizer_config.json's <c>chat_template</c> (a string, or a list of {name, template} where "default" is used).
    /// Special tokens come from tokenizer_config.json and special_tokens_map.json.
    /// </summary>
    /// <returns>The template, or null when the folder has none.</returns>
    /// <exception cref="InvalidDataException">A file is malformed; the message names it.</exception>
    /// <exception cref="JinjaException">The template uses unsupported syntax.</exception>
    public static ChatTemplate? FromFolder(string folder)
    {
        ArgumentNullException.ThrowIfNull(folder);
        var specialTokens = new Dictionary<string, string>();
        ReadSpecialTokens(Path.Combine(folder, "special_tokens_map.json"), specialTokens, null);
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        string? fromConfig = null;
        ReadSpecialTokens(configPath, specialTokens, template => fromConfig = template);
        string jinjaPath = Path.Combine(folder, "chat_template.jinja");
        if (File.Exists(jinjaPath))
        {
            return new ChatTemplate(File.ReadAllText(jinjaPath), specialTokens, jinjaPath);
        }

        return fromConfig is null ? null : new ChatTemplate(fromConfig, specialTokens, $"{configPath} chat_template");
    }

    private static void ReadSpecialTokens(string path, Dictionary<string, string> into, Action<string>? onTemplate)
    {
        if (!File.Exists(path))
        {
            return;
        }

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not valid JSON ({e.Message}); fix or delete it.", e);
        }

        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new InvalidDataException($"{path}: expected a JSON object.");
            }

            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Name.EndsWith("_token", StringComparison.Ordinal))
                {
                    string? token = property.Value.ValueKind switch
                    {
                        JsonValueKind.String => property.Value.GetString(),
                        JsonValueKind.Object when property.Value.TryGetProperty("content", out var content) && content.ValueKind == JsonValueKind.String => content.GetString(),
                        _ => null,
                    };
                    if (token is not null)
                    {
                        into[property.Name] = token;
                    }
                }
                else if (property.Name == "chat_template" && onTemplate is not null)
                {
                    onTemplate(ReadTemplateValue(property.Value, path));
                }
            }
        }
    }

    private static string ReadTemplateValue(JsonElement value, string path)
    {
        if (value.ValueKind == JsonValueKind.String)
        {
            return value.GetString()!;
        }

        if (value.ValueKind == JsonValueKind.Array)
        {
            var names = new List<string>();
            foreach (var item in value.EnumerateArray())
            {
                if (item.ValueKind == JsonValueKind.Object && item.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                    && item.TryGetProperty("template", out var template) && template.ValueKind == JsonValueKind.String)
                {
                    if (name.GetString() == "default")
                    {
                        return template.GetString()!;
                    }

                    names.Add(name.GetString()!);
                }
                else
                {
                    throw new InvalidDataException($"{path}: chat_template list items must be {{\"name\": ..., \"template\": ...}}.");
                }
            }

            throw new InvalidDataException($"{path}: chat_template lists named templates ({string.Join(", ", names)}) but none is named \"default\".");
        }

        throw new InvalidDataException($"{path}: chat_template must be a string or a list of named templates, not {value.ValueKind}.");
    }

    /// <summary>Renders a conversation given as role/content pairs.</summary>
    /// <param name="messages">The messages (role "system", "user", "assistant", ...; content text).</param>
    /// <param name="options">Generation prompt, tools, documents, more variables.</param>
    /// <returns>The prompt text.</returns>
    /// <exception cref="JinjaRaisedException">The template rejected the conversation (e.g. roles do not alternate); the message is the template's.</exception>
    /// <exception cref="JinjaException">Rendering failed or hit a limit.</exception>
    public string Render(IEnumerable<(string Role, string Content)> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        return Render(messages.Select(m => (IReadOnlyDictionary<string, object?>)new Dictionary<string, object?> { ["role"] = m.Role, ["content"] = m.Content }).ToList(), options);
    }

    /// <summary>
    /// Renders a conversation of message objects as transformers passes them: each a dictionary with "role" and
    /// "content" (a string, or a list of parts such as {"type": "text", "text": ...}) and whatever else the template reads
    /// (tool_calls, name, ...); values may be strings, numbers, booleans, null, lists, dictionaries or JsonElement.
    /// </summary>
    /// <param name="messages">The messages.</param>
    /// <param name="options">Generation prompt, tools, documents, more variables.</param>
    /// <returns>The prompt text.</returns>
    /// <exception cref="JinjaRaisedException">The template rejected the conversation; the message is the template's.</exception>
    /// <exception cref="JinjaException">Rendering failed or hit a limit.</exception>
    public string Render(IReadOnlyList<IReadOnlyDictionary<string, object?>> messages, ChatTemplateOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(messages);
        options ??= new ChatTemplateOptions();
        var variables = new Dictionary<string, object?>(_specialTokens)
        {
            ["messages"] = messages.Select(m => (object?)m.ToDictionary(p => p.Key, p => p.Value)).ToList(),
            ["add_generation_prompt"] = options.AddGenerationPrompt,
        };

        // transformers passes tools and documents as None when not given, so they are defined (and none).
        variables["tools"] = options.Tools;
        variables["documents"] = options.Documents;

        var now = options.Now ?? (() => DateTime.Now);
        variables["strftime_now"] = (Func<string[], string>)(args => StrfTime(now(), args.Length > 0 ? args[0] : ""));
        foreach (var (name, value) in options.Variables ?? new Dictionary<string, object?>())
        {
            variables[name] = value;
        }

        return _template.Render(variables, options.Limits);
    }

    /// <summary>Python's <c>datetime.strftime</c> for the directives templates use (C locale).</summary>
    private static string StrfTime(DateTime time, string format)
    {
        var result = new System.Text.StringBuilder();
        var culture = CultureInfo.InvariantCulture;
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length)
            {
                result.Append(format[i]);
                continue;
            }

            char directive = format[++i];
            result.Append(directive switch
            {
                'd' => time.ToString("dd", culture),
                'm' => time.ToString("MM", culture),
                'Y' => time.ToString("yyyy", culture),
                'y' => time.ToString("yy", culture),
                'b' => time.ToString("MMM", culture),
                'B' => time.ToString("MMMM", culture),
                'a' => time.ToString("ddd", culture),
                'A' => time.ToString("dddd", culture),
                'H' => time.ToString("HH", culture),
                'I' => time.ToString("hh", culture),
                'M' => time.ToString("mm", culture),
                'S' => time.ToString("ss", culture),
                'p' => time.Hour < 12 ? "AM" : "PM",
                'j' => time.DayOfYear.ToString("000", culture),
                '%' => "%",
                _ => throw new InvalidOperationException($"strftime_now: the directive %{directive} is not supported"),
            });
        }

        return result.ToString();
    }
}
