/** Whether the embedded server serves the admin API on DATA_DIR/admin.sock (ADMIN_SOCKET, embedded store only). */
export function adminSocketEnabled(config: { databaseUrl?: string | undefined; adminSocket: boolean }): boolean {
  return !config.databaseUrl && config.adminSocket;
}

/**
 * Whether the admin routes are registered at all: ADMIN_TOKENS for HTTP, or the local admin
 * socket (requireAdmin answers 404 over HTTP when ADMIN_TOKENS is unset).
 */
export function adminApiEnabled(config: { databaseUrl?: string | undefined; adminSocket: boolean; adminTokens: readonly unknown[] }): boolean {
  return config.adminTokens.length > 0 || adminSocketEnabled(config);
}
