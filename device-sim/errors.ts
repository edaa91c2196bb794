/** Errors of the simulator's scenario API, with stable codes shared by logs, the control API and the CLI. */
export const SIM_ERROR_CODES = {
  SIM_UNKNOWN_SCENARIO: 400,
  SIM_UNKNOWN_TARGET: 400,
  SIM_NO_DEVICE: 400,
  SIM_NOT_SIMULATED: 400,
  SIM_BAD_OPTIONS: 400,
  SIM_BAD_REQUEST: 400,
  SIM_NOT_FOUND: 404,
} as const;
export type SimErrorCode = keyof typeof SIM_ERROR_CODES;

export class SimError extends Error {
  constructor(
    readonly code: SimErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SimError';
  }
  get status(): number {
    return SIM_ERROR_CODES[this.code];
  }
}
