// Run-time configuration. serve_frontend.py writes /config.js, which sets
// window.CRUDDUR_CONFIG before app.js runs, so one build works on any port.

export interface CruddurConfig {
  /** Base URL of backend-flask, e.g. http://127.0.0.1:4567 */
  backendUrl: string;
  /** OTLP/HTTP traces URL, e.g. http://127.0.0.1:4318/v1/traces; empty = tracing off */
  otlpUrl: string;
  /** Sent as the x-honeycomb-team header with every export */
  apiKey: string;
  /** resource service.name */
  serviceName: string;
}

declare global {
  interface Window {
    CRUDDUR_CONFIG?: Partial<CruddurConfig>;
  }
}

export function loadConfig(): CruddurConfig {
  const raw = window.CRUDDUR_CONFIG ?? {};
  return {
    backendUrl: (raw.backendUrl || `${location.protocol}//${location.hostname}:4567`).replace(/\/+$/, ''),
    otlpUrl: raw.otlpUrl || '',
    apiKey: raw.apiKey || '',
    serviceName: raw.serviceName || 'frontend-react-js',
  };
}
