/** The one shape of every error response. */
export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  requestId: string;
  /** Validation failures: every offending field and why. */
  errors?: FieldError[];
  /** Present when the vendor answered. */
  zegoCode?: number;
  zegoRequestId?: string;
}

export interface FieldError {
  field: string;
  reason: string;
}
