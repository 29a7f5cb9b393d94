/**
 * A config that validated but that the engine cannot build, with the JSON pointer of the entry at
 * fault, so the user is told which field to change (as for schema errors), not just that it failed.
 */
export class ConfigBuildError extends Error {
  constructor(
    /** JSON pointer of the entry at fault, e.g. "/iommus/2/reg/0/size". */
    readonly path: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigBuildError';
  }
}
