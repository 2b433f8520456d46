using Sharpformer.NN;

namespace Sharpformer.Training.Optim;

/// <summary>Freezes parameters by name pattern, for fine-tuning part of a model.</summary>
public static class Freezing
{
    /// <summary>
    /// Sets <see cref="Parameter.RequiresGrad"/> false on every parameter of <paramref name="model"/> whose full dotted
    /// name matches one of <paramref name="patterns"/>: globs over the whole name where <c>*</c> matches any run of
    /// characters (dots included) and <c>?</c> exactly one, e.g. <c>bert.embeddings.*</c>, <c>*.LayerNorm.*</c>,
    /// <c>bert.encoder.layer.?.*</c>. Freeze before building the optimizer: frozen parameters belong in no group.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="patterns">One or more glob patterns.</param>
    /// <returns>The names of the matched parameters (<see cref="Module.NamedParameters"/> order), frozen now or already.</returns>
    /// <exception cref="ArgumentException">No pattern was given, a pattern is empty, or a pattern matches no parameter (the message names it); then nothing is frozen.</exception>
    public static IReadOnlyList<string> Freeze(Module model, IEnumerable<string> patterns)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(patterns);
        string[] globs = [.. patterns];
        if (globs.Length == 0)
        {
            throw new ArgumentException("Freeze: no pattern given; pass globs such as \"bert.embeddings.*\".", nameof(patterns));
        }

        foreach (string glob in globs)
        {
            if (string.IsNullOrEmpty(glob))
            {
                throw new ArgumentException("Freeze: a pattern is empty; pass globs such as \"bert.embeddings.*\".", nameof(patterns));
            }
        }

        var parameters = model.NamedParameters().ToList();
        var matched = new List<(string Name, Parameter Parameter)>();
        var used = new bool[globs.Length];
        foreach (var (name, parameter) in parameters)
        {
            bool any = false;
            for (int g = 0; g < globs.Length; g++)
            {
                if (GlobMatches(globs[g], name))
                {
                    used[g] = true;
                    any = true;
                }
            }

            if (any) matched.Add((name, parameter));
        }

        for (int g = 0; g < globs.Length; g++)
        {
            if (!used[g])
            {
                string examples = string.Join(", ", parameters.Take(3).Select(p => p.Name));
                throw new ArgumentException($"Freeze: the pattern '{globs[g]}' matches no parameter (names look like {examples}, ...); '*' matches any characters, dots included.", nameof(patterns));
            }
        }

        foreach (var (_, parameter) in matched)
        {
            parameter.RequiresGrad = false;
        }

        return [.. matched.Select(m => m.Name)];
    }

    /// <summary>Whether <paramref name="text"/> as a whole matches <paramref name="pattern"/> ('*' any run, '?' one character).</summary>
    internal static bool GlobMatches(string pattern, string text)
    {
        int p = 0, t = 0;
        int starP = -1, starT = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == text[t]))
            {
                p++;
                t++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                // Remember the star and first let it match nothing; on a mismatch it takes one more character.
                starP = p++;
                starT = t;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                t = ++starT;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && pattern[p] == '*')
        {
            p++;
        }

        return p == pattern.Length;
    }
}
