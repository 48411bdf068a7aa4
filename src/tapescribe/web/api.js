// Talking to the tapescribe API: JSON requests, uploads with progress, and the one error shape
// {"error": {"status", "code", "message", "details"}} turned into an ApiError whose message is
// what the person reads.

export class ApiError extends Error {
  constructor(message, { status = 0, code = 'network', details = {} } = {}) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

const UNREACHABLE = 'Could not reach the tapescribe server. Check that it is running and try again.';

// With a key set on the server, a request without a valid login answers 401: sign in again.
function signInIfAsked(status) {
  if (status === 401) location.assign('/login');
}

function errorFromBody(status, statusText, text) {
  try {
    const error = JSON.parse(text).error;
    if (error && error.message) return new ApiError(error.message, error);
  } catch {
    // not our JSON shape (e.g. a proxy's HTML page): fall through to a generic message
  }
  return new ApiError(`The server answered ${status} ${statusText || ''}`.trim() + '.', { status, code: 'http_error' });
}

export async function api(path, { method = 'GET', json, form, signal } = {}) {
  const init = { method, signal, headers: { Accept: 'application/json' } };
  if (json !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(json);
  } else if (form) {
    init.body = form;
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(UNREACHABLE);
  }
  signInIfAsked(response.status);
  const text = await response.text();
  if (!response.ok) throw errorFromBody(response.status, response.statusText, text);
  return text ? JSON.parse(text) : null;
}

// XMLHttpRequest because fetch() cannot report upload progress.
export function uploadFile(path, form, { onProgress } = {}) {
  const xhr = new XMLHttpRequest();
  const done = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    };
    xhr.onload = () => {
      signInIfAsked(xhr.status);
      if (xhr.status >= 200 && xhr.status < 300) {
        try {
          resolve(JSON.parse(xhr.responseText));
        } catch {
          reject(new ApiError('The server sent an answer this page cannot read.', { status: xhr.status }));
        }
      } else {
        reject(errorFromBody(xhr.status, xhr.statusText, xhr.responseText));
      }
    };
    xhr.onerror = () => reject(new ApiError(UNREACHABLE));
    xhr.onabort = () => reject(new ApiError('Upload stopped.', { code: 'aborted' }));
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}

const session = (id) => `/session/${encodeURIComponent(id)}`;

export const urls = {
  session,
  audio: (id, download = false) => `${session(id)}/audio${download ? '?download=true' : ''}`,
  export: (id, format) => `${session(id)}/export/${format}`,
  events: (id) => `${session(id)}/events`,
};

export const getHealth = () => api('/health');
export const getSession = (id) => api(session(id));
export const listSessions = (limit, offset = 0, tag = null) => api(`/sessions?limit=${limit}&offset=${offset}${tag ? `&tag=${encodeURIComponent(tag)}` : ''}`);
export const search = (query, signal) => api(`/search?q=${encodeURIComponent(query)}`, { signal });
export const renameSession = (id, title) => api(session(id), { method: 'PATCH', json: { title } });
export const deleteSession = (id) => api(session(id), { method: 'DELETE' });
export const cancelSession = (id) => api(`${session(id)}/cancel`, { method: 'POST' });
export const retrySession = (id) => api(`${session(id)}/retry`, { method: 'POST' });
export const editSegment = (id, position, text) => api(`${session(id)}/segments/${position}`, { method: 'PATCH', json: { text } });
export const listVersions = (id) => api(`${session(id)}/versions`);
export const getVersion = (id, number) => api(`${session(id)}/versions/${number}`);
// {} (or an absent field) means auto: the server chooses the model by language, detected if not given.
export const retranscribe = (id, choice) => api(`${session(id)}/retranscribe`, { method: 'POST', json: choice });

// The models this server offers change only with its configuration: asked once per page load.
let models = null;
export function getModels() {
  models ||= api('/models').catch((error) => {
    models = null;
    throw error;
  });
  return models;
}
