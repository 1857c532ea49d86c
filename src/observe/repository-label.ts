/**
 * A repository URL safe to show in labels, annotations and logs: no password, query or fragment
 * (where S3-compatible stores and SFTP URLs may carry credentials). Local paths pass unchanged.
 */
export function redactRepository(repo: string): string {
  const value = repo.trim();
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) return value;
  try {
    const url = new URL(value);
    url.password = '';
    url.search = '';
    url.hash = '';
    return url.toString().replace(/\/$/, '');
  } catch {
    return value.replace(/\/\/[^@/]*@/, '//').replace(/[?#].*$/, '');
  }
}
