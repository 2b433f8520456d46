using System.Text;

namespace Sharpformer.AI;

/// <summary>
/// Reads <c>.env</c> files as the dotenv tools do: <c>KEY=VALUE</c> lines, blank lines and <c># comments</c>, an
/// optional <c>export </c> prefix, values unquoted (trimmed, a <c> #</c> starts a comment), in single quotes (taken
/// literally) or in double quotes (<c>\n</c>, <c>\t</c>, <c>\"</c> and <c>\\</c> escapes; may span lines). Values are
/// never put into error messages: they are often secrets.
/// </summary>
public static class DotEnv
{
    /// <summary>The file name looked for.</summary>
    public const string FileName = ".env";

    /// <summary>The first <c>.env</c> file in <paramref name="startDirectory"/> or one of its parents, or null.</summary>
    /// <param name="startDirectory">Where to start (usually the working directory).</param>
    /// <returns>The file's full path, or null when there is none up to the root.</returns>
    public static string? FindFile(string startDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(startDirectory);
        for (var directory = new DirectoryInfo(Path.GetFullPath(startDirectory)); directory is not null; directory = directory.Parent)
        {
            string candidate = Path.Combine(directory.FullName, FileName);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>
    /// A variable's value: the process environment wins (as in the dotenv tools, a .env file does not override what is
    /// set), else the nearest <c>.env</c> file from <paramref name="startDirectory"/> upwards.
    /// </summary>
    /// <param name="name">The variable, e.g. OPENAI_API_KEY.</param>
    /// <param name="startDirectory">Where the .env search starts.</param>
    /// <param name="environment">Reads the environment; null means <see cref="Environment.GetEnvironmentVariable(string)"/>.</param>
    /// <returns>The value and where it came from ("environment" or the .env path); null when it is set nowhere (or empty).</returns>
    /// <exception cref="FormatException">The .env file has a line that is not KEY=VALUE; the message names the file and line.</exception>
    public static (string Value, string Source)? Lookup(string name, string startDirectory, Func<string, string?>? environment = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        environment ??= Environment.GetEnvironmentVariable;
        if (environment(name) is { Length: > 0 } fromEnvironment)
        {
            return (fromEnvironment, "environment");
        }

        if (FindFile(startDirectory) is not { } file)
        {
            return null;
        }

        return Parse(File.ReadAllText(file), file).TryGetValue(name, out var value) && value.Length > 0 ? (value, file) : null;
    }

    /// <summary>Parses the text of a .env file; a later assignment of a name wins.</summary>
    /// <param name="text">The file's text.</param>
    /// <param name="source">The file's name for error messages.</param>
    /// <returns>The variables.</returns>
    /// <exception cref="FormatException">A line is not KEY=VALUE, a name is not a valid identifier, or a quote is not closed; the message names the line but never shows a value.</exception>
    public static IReadOnlyDictionary<string, string> Parse(string text, string source = FileName)
    {
        ArgumentNullException.ThrowIfNull(text);
        var variables = new Dictionary<string, string>(StringComparer.Ordinal);
        string[] lines = text.ReplaceLineEndings("\n").Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            int lineNumber = i + 1;
            string line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            if (line.StartsWith("export ", StringComparison.Ordinal) || line.StartsWith("export\t", StringComparison.Ordinal))
            {
                line = line[7..].TrimStart();
            }

            int equals = line.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                throw new FormatException($"{source} line {lineNumber}: expected NAME=VALUE (a # starts a comment line).");
            }

            string name = line[..equals].Trim();
            if (!IsName(name))
            {
                throw new FormatException($"{source} line {lineNumber}: the name before '=' must be letters, digits, underscores or dots, not starting with a digit.");
            }

            string rest = line[(equals + 1)..].TrimStart();
            string value;
            if (rest.StartsWith('\''))
            {
                int close = rest.IndexOf('\'', 1);
                if (close < 0)
                {
                    throw new FormatException($"{source} line {lineNumber}: the single-quoted value of {name} is not closed.");
                }

                value = rest[1..close];
            }
            else if (rest.StartsWith('"'))
            {
                var builder = new StringBuilder();
                int start = i;
                int at = 1;
                bool closed = false;
                while (!closed)
                {
                    for (; at < rest.Length; at++)
                    {
                        char c = rest[at];
                        if (c == '\\' && at + 1 < rest.Length)
                        {
                            at++;
                            builder.Append(rest[at] switch { 'n' => '\n', 't' => '\t', 'r' => '\r', char other => other });
                        }
                        else if (c == '"')
                        {
                            closed = true;
                            break;
                        }
                        else
                        {
                            builder.Append(c);
                        }
                    }

                    if (!closed)
                    {
                        // A double-quoted value may go on over the next lines.
                        if (++i >= lines.Length)
                        {
                            throw new FormatException($"{source} line {start + 1}: the double-quoted value of {name} is not closed.");
                        }

                        builder.Append('\n');
                        rest = lines[i];
                        at = 0;
                    }
                }

                value = builder.ToString();
            }
            else
            {
                int comment = rest.IndexOf(" #", StringComparison.Ordinal);
                value = (comment >= 0 ? rest[..comment] : rest).Trim();
            }

            variables[name] = value;
        }

        return variables;
    }

    private static bool IsName(string name)
    {
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            return false;
        }

        foreach (char c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c == '_' || c == '.'))
            {
                return false;
            }
        }

        return true;
    }
}
