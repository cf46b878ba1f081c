using System.Text.RegularExpressions;

namespace QuantSharp.IO.Hub;

/// <summary>
/// "org/name" or "org/name@revision" (a branch, tag or commit). Only ids with an owner are accepted so that a plain
/// word stays a (missing) local folder rather than a surprise download.
/// </summary>
public sealed partial record HubModelId(string RepoId, string Revision)
{
    public const string DefaultRevision = "main";

    /// <summary>A 40-hex commit: a pinned revision whose snapshot can never change.</summary>
    public bool IsCommit => CommitPattern().IsMatch(Revision);

    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    public static bool TryParse(string text, out HubModelId id)
    {
        id = null!;
        if (string.IsNullOrWhiteSpace(text)) return false;
        string repo = text, revision = DefaultRevision;
        int at = text.IndexOf('@');
        if (at >= 0)
        {
            repo = text[..at];
            revision = text[(at + 1)..];
            // The revision becomes a path under refs/ (refs/pr/1 included), so it must not climb out of it.
            if (revision.Length == 0 || revision.Any(char.IsWhiteSpace) || revision.StartsWith('/') || revision.Contains('\\')
                || revision.Split('/').Any(s => s is "" or "." or "..")) return false;
        }
        string[] parts = repo.Split('/');
        if (parts.Length != 2 || !parts.All(IsValidSegment)) return false;
        id = new HubModelId(repo, revision);
        return true;
    }

    public static HubModelId Parse(string text) =>
        TryParse(text, out var id) ? id : throw new QuantSharpException($"'{text}' is not a Hugging Face model id (org/name or org/name@revision).");

    internal static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    // The Hub's own rule: letters, digits, '-', '_', '.'; no leading/trailing '-' or '.', no "--" or "..".
    private static bool IsValidSegment(string s) =>
        s.Length is > 0 and <= 96 && SegmentPattern().IsMatch(s) && !s.Contains("--") && !s.Contains("..");

    [GeneratedRegex(@"^[A-Za-z0-9_](?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?$")]
    private static partial Regex SegmentPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();
}
