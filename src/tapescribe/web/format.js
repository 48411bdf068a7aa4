// How numbers, times and states are written on the page.

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDate(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return '';
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  if (unit === 0) return `${bytes.toLocaleString()} ${bytes === 1 ? 'byte' : 'bytes'}`;
  return `${value.toLocaleString(undefined, { maximumFractionDigits: value < 10 ? 1 : 0 })} ${units[unit]}`;
}

export function exactBytes(bytes) {
  return `${(bytes ?? 0).toLocaleString()} bytes`;
}

// 65 -> "1:05", 3723 -> "1:02:03"
export function formatClock(seconds) {
  const total = Math.max(0, Math.floor(seconds || 0));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function formatDuration(seconds) {
  return seconds === null || seconds === undefined ? '' : formatClock(Math.round(seconds));
}

export function formatPercent(fraction) {
  return `${Math.round(Math.min(1, Math.max(0, fraction || 0)) * 100)}%`;
}

export const STATUS_LABELS = {
  queued: 'Queued',
  processing: 'Transcribing',
  done: 'Done',
  error: 'Error',
  cancelled: 'Cancelled',
};

export const SOURCE_LABELS = { upload: 'Upload', recording: 'Recording', live: 'Live' };

export const statusLabel = (status) => STATUS_LABELS[status] || status || 'Unknown';
export const sourceLabel = (source) => SOURCE_LABELS[source] || source || '';
export const isUnfinished = (status) => status === 'queued' || status === 'processing';
