using System.Diagnostics;
using System.Text;

namespace Sharpformer.Text.Jinja;

/// <summary>An error in a template: unsupported or malformed syntax, or a failure while rendering.</summary>
public class JinjaException : Exception
{
    /// <summary>Creates the error.</summary>
    /// <param name="message">What went wrong, with the position.</param>
    /// <param name="line">The 1-based line in the template.</param>
    /// <param name="column">The 1-based column in the template.</param>
    public JinjaException(string message, int line, int column)
        : base(message)
    {
        Line = line;
        Column = column;
    }

    /// <summary>The 1-based line in the template where the error is.</summary>
    public int Line { get; }

    /// <summary>The 1-based column in the template where the error is.</summary>
    public int Column { get; }
}

/// <summary>The template called <c>raise_exception(message)</c>; <see cref="Exception.Message"/> is its message.</summary>
public sealed class JinjaRaisedException : JinjaException
{
    /// <summary>Creates the error.</summary>
    /// <param name="message">The template's message.</param>
    /// <param name="line">The 1-based line of the call.</param>
    /// <param name="column">The 1-based column of the call.</param>
    public JinjaRaisedException(string message, int line, int column)
        : base(message, line, column)
    {
    }
}

/// <summary>Bounds on one rendering, so a template cannot run away.</summary>
public sealed record JinjaLimits
{
    /// <summary>Most statements and expressions evaluated (default 1,000,000).</summary>
    public int MaxSteps { get; init; } = 1_000_000;

    /// <summary>Most characters of output (default 4,000,000).</summary>
    public int MaxOutputLength { get; init; } = 4_000_000;

    /// <summary>Most nested macro calls (default 50).</summary>
    public int MaxCallDepth { get; init; } = 50;

    /// <summary>Longest a rendering may take (default 5 seconds).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// A parsed Jinja template of the subset Hugging Face chat templates use, rendered with <c>trim_blocks</c> and
/// <c>lstrip_blocks</c> as transformers does. Parse once, render many times; rendering is thread-safe.
/// </summary>
public sealed class JinjaTemplate
{
    private readonly List<Node> _body;

    private JinjaTemplate(List<Node> body) => _body = body;

    /// <summary>Parses <paramref name="source"/>.</summary>
    /// <exception cref="JinjaException">Malformed or unsupported syntax; the message names the construct, line and column.</exception>
    public static JinjaTemplate Parse(string source)
    {
        ArgumentNullException.ThrowIfNull(source);
        return new JinjaTemplate(JinjaParser.Parse(source));
    }

    /// <summary>Renders the template.</summary>
    /// <param name="variables">
    /// The variables: strings, numbers, booleans, null, dictionaries (string keys), lists, JsonElement, or
    /// <see cref="Func{T, TResult}"/> of string[] → string for functions such as <c>strftime_now</c>.
    /// </param>
    /// <param name="limits">Bounds; null means <see cref="JinjaLimits"/>' defaults.</param>
    /// <returns>The rendered text.</returns>
    /// <exception cref="JinjaRaisedException">The template called <c>raise_exception</c>.</exception>
    /// <exception cref="JinjaException">Rendering failed or hit a limit; the message says where.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, JinjaLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var globals = new Dictionary<string, object?>();
        JinjaRuntime.AddBuiltins(globals);
        foreach (var (name, value) in variables)
        {
            globals[name] = value is Func<string[], string> function
                ? new Callable(name, (args, _) => function(args.Select(PyValues.Str).ToArray()))
                : PyValues.FromClr(value);
        }

        var runtime = new JinjaRuntime(limits ?? new JinjaLimits(), Stopwatch.StartNew());
        var output = new StringBuilder();
        runtime.Execute(_body, new Scope(globals, null), output);
        return output.ToString();
    }
}

/// <summary>Variables visible at one point: a for-loop body or macro call gets its own scope.</summary>
internal sealed class Scope(Dictionary<string, object?> variables, Scope? parent)
{
    public Dictionary<string, object?> Variables { get; } = variables;

    public Scope? Parent { get; } = parent;

    public bool TryGet(string name, out object? value)
    {
        for (var scope = this; scope is not null; scope = scope.Parent)
        {
            if (scope.Variables.TryGetValue(name, out value))
            {
                return true;
            }
        }

        value = null;
        return false;
    }
}
